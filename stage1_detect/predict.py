"""Detector output as a boxes table: absolute pixels, confidence as score, source
`model:<run>-<weights sha256[:8]>`, batched, with a progress bar on long runs."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from annotate.tables.schema import coerce, model_source
from stage1_detect.engine import device_or_auto, ultralytics
from stage1_detect.train import weights_of

#: Raw detections keep every box at or above this confidence: the lowest operating threshold
#: a run considers (`quality.cascade.threshold` chooses the operating one later, on validation,
#: by stage-2 score). Every entry (CLI, pipeline, cross-fitting) predicts at this by default.
RAW_CONF = 0.05


def detector_version(weights: str | os.PathLike) -> str:
    """`<run folder>-<weights sha256, 8 hex>` for ultralytics' `<run>/train/weights/*.pt`
    layout, `<file stem>-<sha256, 8 hex>` for any other weights file."""
    weights = Path(weights).resolve()
    trained = weights.parent.name == "weights" and weights.parent.parent.name == "train"
    run = weights.parents[2].name if trained else weights.stem
    return f"{run}-{hashlib.sha256(weights.read_bytes()).hexdigest()[:8]}"


def load(run_or_weights: str | os.PathLike):
    """The trained detector of a run directory (or a weights file) and its version."""
    weights = weights_of(run_or_weights)
    return ultralytics().YOLO(str(weights)), detector_version(weights)


def detect(model, sources: list, ids: list, conf: float = RAW_CONF, imgsz: int | None = None,
           batch: int = 32, device: str | None = None, progress: bool = False) -> pd.DataFrame:
    """Detections of `model` on `sources` (paths, or PIL images as shown: EXIF-transposed), one
    row per box in absolute pixels with its confidence as `score`; no annotator/source yet."""
    imgsz = imgsz or int(model.overrides.get("imgsz", 640))
    names = model.names
    frames = []
    steps = range(0, len(sources), batch)
    for start in tqdm(steps, desc="detecting", disable=not progress):
        results = model.predict(sources[start:start + batch], imgsz=imgsz, conf=conf,
                                device=device_or_auto(device), batch=batch, verbose=False)
        for image_id, result in zip(ids[start:start + batch], results, strict=True):
            found = result.boxes
            if len(found) == 0:
                continue
            xyxy = found.xyxy.cpu().numpy().astype(np.float64)
            frames.append(pd.DataFrame({
                "image_id": image_id, "object_id": [f"p{k}" for k in range(len(xyxy))],
                "label": [names[int(c)] for c in found.cls.cpu().numpy()],
                "x0": xyxy[:, 0], "y0": xyxy[:, 1], "x1": xyxy[:, 2], "y1": xyxy[:, 3],
                "score": found.conf.cpu().numpy().astype(np.float64)}))
    boxes = (pd.concat(frames, ignore_index=True) if frames else
             pd.DataFrame(columns=["image_id", "object_id", "label", "x0", "y0", "x1", "y1",
                                   "score"]))
    return boxes[(boxes.x1 > boxes.x0) & (boxes.y1 > boxes.y0)]


def predict(run_or_weights: str | os.PathLike, images: pd.DataFrame, conf: float = RAW_CONF,
            imgsz: int | None = None, batch: int = 32, device: str | None = None,
            progress: bool = False) -> pd.DataFrame:
    """Detect objects in every image of `images`; return a boxes table."""
    model, version = load(run_or_weights)
    boxes = detect(model, images.path.astype(str).tolist(), images.image_id.tolist(), conf=conf,
                   imgsz=imgsz, batch=batch, device=device, progress=progress)
    return coerce("boxes", boxes.assign(annotator=version, source=model_source(version)))
