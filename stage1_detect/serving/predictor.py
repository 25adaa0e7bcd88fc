"""What the backend does for one `/predict` request: read each task's image, detect, hand the
detections over as the run deployed them (its operating threshold, its suppression), map the
classes to the project's labels, and say per task what was kept, what fell below the threshold,
what was suppressed or unmapped, and why a task got nothing.

The model is loaded once; requests take turns on it (one lock), images are read before.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from annotate.formats.ls_export import prediction_score, regions
from annotate.runtime.errors import UserError
from stage1_detect.handover import ULTRALYTICS_CONF, at_threshold, suppress
from stage1_detect.predict import RAW_CONF, detect, load
from stage1_detect.serving.images import ImageSource, ImageUnavailable
from stage1_detect.serving.labels import Target, target
from stage1_detect.train import RUN_FILE

log = logging.getLogger(__name__)

#: The threshold when the run chose none (no `threshold.json`): ultralytics' own default.
DEFAULT_THRESHOLD = ULTRALYTICS_CONF
THRESHOLD_FILE = "threshold.json"
#: What a prediction's task-level `score` is (`annotate.formats.ls_export.prediction_score`).
SCORE_MEANING = "mean confidence of the task's boxes (null: no box)"


def stage1_folder(run: str | os.PathLike) -> Path:
    """The detector folder of `run`: a pipeline run's `stage1/`, a `stage1-detect train`
    folder, or the folder of a weights file."""
    path = Path(run)
    if path.is_dir() and (path / "stage1" / RUN_FILE).is_file():
        return path / "stage1"
    return path if path.is_dir() else path.parent


@dataclass(frozen=True)
class HandOver:
    """The operating point: confidence threshold and class-agnostic suppression IoU."""

    threshold: float
    suppress_iou: float | None
    source: str  # where the values come from, for the record and the log

    @classmethod
    def of_run(cls, folder: Path, threshold: float | None = None,
               suppress_iou: float | str | None = "run") -> HandOver:
        """The run's `threshold.json` choice, overridden by `threshold` / `suppress_iou`
        (None: no suppression; "run": as the run chose)."""
        record_path = folder / THRESHOLD_FILE
        record = json.loads(record_path.read_text()) if record_path.is_file() else {}
        chosen = record.get("chosen")
        if threshold is None and chosen is not None:
            threshold, source = float(chosen), f"chosen on validation ({record_path})"
        elif threshold is None:
            threshold, source = DEFAULT_THRESHOLD, (f"no {THRESHOLD_FILE} in {folder}: "
                                                    "ultralytics' default")
        else:
            source = "given"
        if not RAW_CONF <= threshold <= 1:
            raise UserError(f"threshold {threshold} outside [{RAW_CONF}, 1]: the detector "
                            f"keeps no box below {RAW_CONF}")
        iou = record.get("suppress_iou") if suppress_iou == "run" else suppress_iou
        return cls(threshold, None if iou is None else float(iou), source)


class Predictor:
    """A trained detector behind the ML backend contract.

    Parameters
    ----------
    run : path
        A pipeline run folder, a `stage1-detect train` folder or a weights file.
    images : ImageSource
        How task images are read.
    threshold, suppress_iou
        Override the run's operating point (`HandOver.of_run`).
    label_map : dict
        Explicit model class -> project label pairs (`labels.target`).
    imgsz, device
        Detector input size (default: its training size) and device.
    """

    def __init__(self, run: str | os.PathLike, images: ImageSource | None = None,
                 threshold: float | None = None, suppress_iou: float | str | None = "run",
                 label_map: dict | None = None, imgsz: int | None = None,
                 device: str | None = None):
        folder = stage1_folder(run)
        self.model, self.version = load(run if Path(run).is_file() else folder)
        self.classes = [self.model.names[k] for k in sorted(self.model.names)]
        self.hand_over = HandOver.of_run(folder, threshold, suppress_iou)
        record = folder / RUN_FILE
        run_record = json.loads(record.read_text()) if record.is_file() else {}
        self.provenance = {key: run_record.get(key) for key in ("data_version",
                                                                "source_version")}
        self.images = images or ImageSource.from_environment()
        self.label_map = dict(label_map or {})
        self.imgsz, self.device = imgsz, device
        self._lock = threading.Lock()
        self._target = lru_cache(maxsize=16)(self._make_target)

    def _make_target(self, config: str) -> Target:
        found = target(config, self.classes, self.label_map)
        if not found.mapping:
            raise UserError(f"none of the detector's classes {self.classes} is a label of "
                            f"the project ({found.describe()}): name them in the config's "
                            "predicted_values or pass --label-map")
        log.info("label config: %s", found.describe())
        return found

    def target(self, config: str) -> Target:
        """The project's `Target`; UserError when the config cannot take the boxes."""
        return self._target(config)

    def describe(self) -> dict:
        """What the backend serves (for `/health`, `/setup` and the log)."""
        return {"model_version": self.version, "classes": self.classes,
                "threshold": self.hand_over.threshold,
                "suppress_iou": self.hand_over.suppress_iou,
                "threshold_from": self.hand_over.source, "score": SCORE_MEANING,
                **self.provenance}

    def predict(self, tasks: list, config: str) -> dict:
        """The `/predict` answer: `results` (one entry per task, in order: a prediction, or
        an empty list when the task's image could not be read) and `meta` (per task:
        kept, below threshold, suppressed and unmapped counts, the reason for a failure)."""
        goal = self.target(config)
        reports, pictures = [], {}
        for k, task in enumerate(tasks):
            task_id = task.get("id") if isinstance(task, dict) else None
            data = task.get("data") if isinstance(task, dict) else None
            report = {"task": task_id, "boxes": 0, "below_threshold": 0, "suppressed": 0,
                      "unmapped": {}, "error": None}
            reports.append(report)
            if not isinstance(data, dict) or goal.data_field not in data:
                report["error"] = (f"task data has no {goal.data_field!r} field (the "
                                   f"labeling config's <Image value=\"${goal.data_field}\">)")
                continue
            try:
                pictures[k] = self.images.read(data[goal.data_field])
            except ImageUnavailable as err:
                report["error"] = str(err)
        with self._lock:
            found = detect(self.model, list(pictures.values()), list(pictures), conf=RAW_CONF,
                           imgsz=self.imgsz, device=self.device) if pictures else None
        results = []
        for k, report in enumerate(reports):
            if k not in pictures:
                results.append([])
                continue
            boxes = found[found.image_id == k]
            results.append(self._prediction(boxes, pictures[k].size, goal, report))
        self._log(reports)
        return {"results": results, "model_version": self.version,
                "meta": {"tasks": reports, **self.describe()}}

    def _prediction(self, boxes: pd.DataFrame, size: tuple, goal: Target, report: dict) -> dict:
        kept = at_threshold(boxes, self.hand_over.threshold) if len(boxes) else boxes
        handed = suppress(kept, self.hand_over.suppress_iou)
        mapped = handed.label.isin(list(goal.mapping)) if len(handed) else pd.Series(dtype=bool)
        report["below_threshold"] = len(boxes) - len(kept)
        report["suppressed"] = len(kept) - len(handed)
        report["unmapped"] = dict(Counter(handed.label[~mapped])) if len(handed) else {}
        shown = handed[mapped].assign(label=lambda b: b.label.map(goal.mapping)) if len(
            handed) else handed
        report["boxes"] = len(shown)
        width, height = size
        result = regions(shown, width, height, goal.from_name, goal.to_name) if len(shown) else []
        score = prediction_score(shown.score) if len(shown) else None
        return {"result": result, "score": score, "model_version": self.version}

    def _log(self, reports: list) -> None:
        failed = [r for r in reports if r["error"]]
        unmapped = Counter()
        for report in reports:
            unmapped.update(report["unmapped"])
        log.info("predict: %d tasks, %d boxes kept, %d below threshold %.2f, %d suppressed, "
                 "unmapped %s, %d failed", len(reports), sum(r["boxes"] for r in reports),
                 sum(r["below_threshold"] for r in reports), self.hand_over.threshold,
                 sum(r["suppressed"] for r in reports), dict(unmapped) or "none", len(failed))
        for report in failed:
            log.warning("task %s: no prediction: %s", report["task"], report["error"])
