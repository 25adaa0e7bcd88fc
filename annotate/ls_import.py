"""Label Studio export -> the four tables, with every annotator kept and every drop counted.

Reads the shapes Label Studio 1.x writes (measured on a 1.23 server):
- JSON export and the default snapshot: `completed_by` is a user id, predictions are ids only;
- snapshot with `annotations__completed_by` and `predictions` expanded: `completed_by` is an
  object with `email`, predictions carry their results (the shape `annotate pull` asks for);
- JSON-MIN: one flat row per completed annotation, no skipped annotations, no predictions.
Walking the JSON is a Python loop (that is what JSON is); coordinate conversion and every check
on the boxes run vectorised over all of them at once.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import images as image_files
from .schema import HUMAN, TableSet, coerce, is_model_source, model_source

#: Region overshoot beyond the image border that is clipped (float round-off, sloppy models);
#: anything larger is rejected. Fraction of the image side.
CLIP_TOLERANCE = 0.01
#: JSON-MIN keys that are about the annotation, not the task data or a control's result.
MIN_ANNOTATION_KEYS = {"id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time"}


class ExportError(ValueError):
    """An export that cannot be read at all (not JSON, wrong top-level shape)."""


@dataclass
class ImportSummary:
    """What an import read, kept and rejected (with reasons and where), so nothing is lost
    silently."""

    source: str
    shape: str = ""
    tasks_read: int = 0
    tasks_kept: int = 0
    annotations_read: int = 0
    annotations_kept: int = 0
    skipped: int = 0
    boxes: int = 0
    captions: int = 0
    predictions: int = 0
    prediction_boxes: int = 0
    predictions_as_ids: int = 0
    clipped_boxes: int = 0
    images_missing: int = 0
    ignored_results: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    labels: list[str] = field(default_factory=list)

    def reject(self, reason: str, where: str | list[str], n: int = 1) -> None:
        """Count `n` items dropped for `reason`; keep up to three locations as examples."""
        self.rejected[reason] += n
        wheres = [where] if isinstance(where, str) else list(where)
        self.examples[reason].extend(wheres[: 3 - len(self.examples[reason])])

    def reject_where(self, reasons: list[tuple[np.ndarray, str]], wheres: pd.Series) -> np.ndarray:
        """Apply (mask, reason) pairs in order (an item counts under its first reason only);
        return the mask of items that pass every check."""
        rejected = np.zeros(len(wheres), dtype=bool)
        for mask, reason in reasons:
            mask = np.asarray(mask, dtype=bool) & ~rejected
            if mask.any():
                self.reject(reason, wheres[mask].head(3).tolist(), int(mask.sum()))
            rejected |= mask
        return ~rejected

    def count_kept(self, ts: TableSet) -> None:
        """Fill the kept figures from the table set the import produced: human vs model boxes,
        human captions, the label map."""
        self.tasks_kept = len(ts.images)
        self.annotations_kept = len(ts.annotations)
        self.boxes = int((ts.boxes.source == HUMAN).sum())
        self.prediction_boxes = int(is_model_source(ts.boxes.source).sum())
        self.captions = int((ts.captions.source == HUMAN).sum())
        self.labels = list(ts.labels)

    def to_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "examples"}
        out["ignored_results"] = dict(self.ignored_results)
        out["rejected"] = {r: {"count": n, "examples": self.examples[r]}
                           for r, n in self.rejected.items()}
        return out

    def __str__(self) -> str:
        lines = [
            f"{self.source} ({self.shape})",
            f"  tasks:       {self.tasks_read} read, {self.tasks_kept} kept",
            f"  annotations: {self.annotations_read} read, {self.annotations_kept} kept, "
            f"{self.skipped} skipped (was_cancelled)",
            f"  boxes:       {self.boxes} human, {self.prediction_boxes} predicted "
            f"(from {self.predictions} predictions)",
            f"  captions:    {self.captions}",
            f"  labels:      {', '.join(self.labels) or '-'}",
        ]
        if self.predictions_as_ids:
            lines.append(f"  note: {self.predictions_as_ids} predictions were given as ids only; "
                         "export a snapshot with predictions expanded (or use `annotate pull`) "
                         "to import them")
        if self.images_missing:
            lines.append(f"  note: {self.images_missing} images not found locally (references "
                         "kept; sizes from original_width/height)")
        if self.clipped_boxes:
            lines.append(f"  note: {self.clipped_boxes} boxes overshot the image by less than "
                         f"{CLIP_TOLERANCE:.0%} and were clipped to it")
        for kind, n in sorted(self.ignored_results.items()):
            lines.append(f"  ignored: {n} results of type {kind!r} (not boxes or text)")
        total = sum(self.rejected.values())
        lines.append(f"  rejected:    {total}" + ("" if total else " (none)"))
        for reason, n in self.rejected.most_common():
            lines.append(f"    {n:>6}  {reason}  e.g. {'; '.join(self.examples[reason])}")
        return "\n".join(lines)


@dataclass
class _Rows:
    """Raw rows collected while walking the JSON; converted and checked in bulk afterwards."""

    tasks: list[dict] = field(default_factory=list)
    task_ids: set[str] = field(default_factory=set)
    annotations: list[dict] = field(default_factory=list)
    regions: list[dict] = field(default_factory=list)
    captions: list[dict] = field(default_factory=list)


def read_export(path: str | os.PathLike) -> list:
    """Parse an export file; a clear `ExportError` (file, line, column) if it is not a JSON list."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError as err:
        raise ExportError(f"{path}: no such file") from err
    except json.JSONDecodeError as err:
        raise ExportError(f"{path}: not valid JSON at line {err.lineno}, column {err.colno}: "
                          f"{err.msg} (truncated or not a Label Studio JSON export?)") from err
    except UnicodeDecodeError as err:
        raise ExportError(f"{path}: not UTF-8 text ({err.reason}); is this a JSON export?") from err
    if isinstance(data, dict) and isinstance(data.get("tasks"), list):
        data = data["tasks"]
    if not isinstance(data, list):
        raise ExportError(f"{path}: expected a JSON list of tasks, found {type(data).__name__}")
    return data


def import_export(
    path: str | os.PathLike,
    images_root: str | os.PathLike | None = None,
    labels: list[str] | None = None,
    caption_field: str = "caption",
    image_field: str | None = None,
    hash_images: bool = True,
) -> tuple[TableSet, ImportSummary]:
    """Read a Label Studio export into a validated `TableSet` and an `ImportSummary`.

    `images_root` resolves image references to local files (default: the export's folder).
    `labels` is the label map; boxes with other labels are rejected (default: every label seen).
    `caption_field` names the TextArea in JSON-MIN exports (full exports carry the type).
    """
    path = Path(path)
    root = Path(images_root) if images_root is not None else path.parent
    tasks = read_export(path)
    summary = ImportSummary(source=str(path))
    rows = _Rows()
    is_min = bool(tasks) and all(isinstance(t, dict) and "annotations" not in t
                                 and ("annotation_id" in t or "annotator" in t) for t in tasks)
    summary.shape = "JSON-MIN" if is_min else "JSON"
    summary.tasks_read = len({_task_key(t) for t in tasks}) if is_min else len(tasks)
    for i, task in enumerate(tasks):
        where = f"item {i}" + (f" (task {task.get('id')})" if isinstance(task, dict) else "")
        if is_min:
            _walk_min_row(task, where, rows, summary, caption_field, image_field)
        else:
            _walk_task(task, where, rows, summary, image_field)
    if not is_min and any(isinstance(t, dict) and _has_expanded_users(t) for t in tasks):
        summary.shape = "JSON snapshot (users expanded)"
    ts = _build(rows, summary, root, labels, hash_images)
    return ts, summary


def _task_key(row: dict) -> object:
    return row.get("id") if isinstance(row, dict) else None


def _has_expanded_users(task: dict) -> bool:
    return any(isinstance(a, dict) and isinstance(a.get("completed_by"), dict)
               for a in task.get("annotations") or [])


def _annotator(completed_by: object) -> str | None:
    """Email when the export names the user, else the numeric user id as text."""
    if isinstance(completed_by, dict):
        value = completed_by.get("email") or completed_by.get("id")
        return None if value is None else str(value)
    return None if completed_by is None else str(completed_by)


def _image_ref(data: dict, image_field: str | None) -> str | None:
    if image_field:
        return data.get(image_field)
    if isinstance(data.get("image"), str):
        return data["image"]
    strings = [v for k, v in data.items()
               if isinstance(v, str) and k not in ("image_id", "group_id", "split")]
    return strings[0] if len(strings) == 1 else None


def _add_task(task_id: object, data: dict, where: str, rows: _Rows, summary: ImportSummary,
              image_field: str | None, meta: object = None) -> str | None:
    """Record the task's image; return its image_id, or None (counted) when unusable."""
    ref = _image_ref(data, image_field)
    if not isinstance(ref, str) or not ref:
        summary.reject("task: no image reference in data"
                       + (f" (field {image_field!r})" if image_field else ""), where)
        return None
    image_id = data.get("image_id", task_id)
    if image_id is None:
        summary.reject("task: no id and no data.image_id", where)
        return None
    meta = meta if isinstance(meta, dict) else {}
    rows.task_ids.add(str(image_id))
    rows.tasks.append({"image_id": str(image_id), "ref": ref, "group_id": data.get("group_id"),
                       "split": data.get("split"), "sha256": meta.get("sha256"),
                       "width": data.get("width"), "height": data.get("height"), "where": where})
    return str(image_id)


def _walk_task(task: object, where: str, rows: _Rows, summary: ImportSummary,
               image_field: str | None) -> None:
    if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
        summary.reject("task: missing or non-object `data`", where)
        return
    image_id = _add_task(task.get("id"), task["data"], where, rows, summary, image_field,
                         task.get("meta"))
    annotations = task.get("annotations") or []
    summary.annotations_read += len(annotations)
    if image_id is None:
        summary.reject("annotation: its task was rejected", where, len(annotations))
        return
    for ann in annotations:
        at = f"{where}, annotation {ann.get('id') if isinstance(ann, dict) else '?'}"
        if not isinstance(ann, dict):
            summary.reject("annotation: not an object", at)
            continue
        if ann.get("was_cancelled"):
            summary.skipped += 1
            continue
        annotator = _annotator(ann.get("completed_by"))
        if annotator is None:
            summary.reject("annotation: no completed_by (annotator unknown)", at)
            continue
        key = len(rows.annotations)
        rows.annotations.append({"key": key, "image_id": image_id, "annotator": annotator,
                                 "source": HUMAN, "lead_time": ann.get("lead_time"),
                                 "created_at": ann.get("created_at"), "where": at})
        _walk_results(ann.get("result") or [], key, image_id, annotator, HUMAN, None, at, rows,
                      summary)
    for pred in task.get("predictions") or []:
        if not isinstance(pred, dict):
            summary.predictions_as_ids += 1
            continue
        summary.predictions += 1
        source = model_source(str(pred.get("model_version") or ""))
        at = f"{where}, prediction {pred.get('id', '?')}"
        _walk_results(pred.get("result") or [], None, image_id, source, source,
                      pred.get("score"), at, rows, summary)


def _walk_results(results: list, ann_key: int | None, image_id: str, annotator: str, source: str,
                  default_score: object, where: str, rows: _Rows, summary: ImportSummary) -> None:
    texts: list[str] = []
    for k, res in enumerate(results):
        if not isinstance(res, dict):
            summary.reject("result: not an object", where)
            continue
        kind = res.get("type")
        value = res.get("value") or {}
        if kind == "rectanglelabels":
            rows.regions.append({
                "ann_key": ann_key, "image_id": image_id, "annotator": annotator,
                "source": source, "object_id": str(res.get("id") or f"r{k}"),
                "labels": value.get("rectanglelabels"), "x": value.get("x"), "y": value.get("y"),
                "w": value.get("width"), "h": value.get("height"),
                "rotation": value.get("rotation", 0) or 0,
                "ow": res.get("original_width"), "oh": res.get("original_height"),
                "score": res.get("score", default_score),
                "where": f"{where}, region {res.get('id', k)}"})
        elif kind == "textarea":
            text = value.get("text")
            texts.extend(t for t in ([text] if isinstance(text, str) else text or [])
                         if isinstance(t, str) and t.strip())
        else:
            summary.ignored_results[str(kind)] += 1
    if texts:
        rows.captions.append({"ann_key": ann_key, "image_id": image_id, "annotator": annotator,
                              "caption": " ".join(t.strip() for t in texts), "source": source})


def _walk_min_row(row: object, where: str, rows: _Rows, summary: ImportSummary,
                  caption_field: str, image_field: str | None) -> None:
    """One JSON-MIN row = one completed annotation with its task's data inlined."""
    summary.annotations_read += 1
    if not isinstance(row, dict):
        summary.reject("annotation: not an object", where)
        return
    data = {k: v for k, v in row.items()
            if k not in MIN_ANNOTATION_KEYS and k != caption_field
            and not (isinstance(v, list) and v and isinstance(v[0], dict))}
    image_id = str(data.get("image_id", row.get("id")))
    if image_id not in rows.task_ids and _add_task(row.get("id"), data, where, rows, summary,
                                                   image_field) is None:
        return
    annotator = _annotator(row.get("annotator"))
    if annotator is None:
        summary.reject("annotation: no annotator", where)
        return
    key = len(rows.annotations)
    at = f"{where}, annotation {row.get('annotation_id', '?')}"
    rows.annotations.append({"key": key, "image_id": image_id, "annotator": annotator,
                             "source": HUMAN, "lead_time": row.get("lead_time"),
                             "created_at": row.get("created_at"), "where": at})
    results: list[dict] = []
    for name, value in row.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            for k, region in enumerate(value):
                if isinstance(region, dict) and "rectanglelabels" in region:
                    results.append({"type": "rectanglelabels", "id": f"{name}-{k}",
                                    "original_width": region.get("original_width"),
                                    "original_height": region.get("original_height"),
                                    "value": region})
                else:
                    summary.ignored_results[f"{name} (JSON-MIN)"] += 1
    if caption_field in row:
        results.append({"type": "textarea", "value": {"text": row[caption_field]}})
    _walk_results(results, key, image_id, annotator, HUMAN, None, at, rows, summary)


def _build(rows: _Rows, summary: ImportSummary, root: Path, labels: list[str] | None,
           hash_images: bool) -> TableSet:
    images = _build_images(rows, summary, root, hash_images)
    annotations = _dedupe_annotations(pd.DataFrame(rows.annotations), summary, images)
    kept_keys = set(annotations["key"]) if len(annotations) else set()
    boxes = _build_boxes(pd.DataFrame(rows.regions), images, kept_keys, labels, summary)
    captions = pd.DataFrame(rows.captions)
    if len(captions):
        captions = captions[captions.ann_key.isna() | captions.ann_key.isin(kept_keys)]
        captions = captions[captions.image_id.isin(images.image_id)]
    seen_labels = sorted(boxes.label.unique().tolist()) if len(boxes) else []
    ts = TableSet(
        images=images.drop(columns=["where"], errors="ignore"),
        annotations=coerce("annotations", annotations.drop(columns=["key", "where"],
                                                           errors="ignore")),
        boxes=coerce("boxes", boxes),
        captions=coerce("captions", captions.drop(columns=["ann_key"], errors="ignore")),
        labels=list(labels) if labels else seen_labels,
        meta={"source": summary.source, "import": {k: v for k, v in summary.to_dict().items()
                                                   if k in ("shape", "tasks_read", "skipped")}},
    ).validate()
    summary.count_kept(ts)
    return ts


def _build_images(rows: _Rows, summary: ImportSummary, root: Path, hash_images: bool
                  ) -> pd.DataFrame:
    """One row per task; size from original_width/height, data.width/height or the file."""
    tasks = pd.DataFrame(rows.tasks, columns=["image_id", "ref", "group_id", "split", "sha256",
                                              "width", "height", "where"])
    dup = tasks.image_id.duplicated()
    if dup.any():
        summary.reject("task: duplicate image_id (a task for this image came earlier)",
                       tasks["where"][dup].tolist(), int(dup.sum()))
    tasks = tasks[~dup].reset_index(drop=True)
    regions = pd.DataFrame(rows.regions, columns=["image_id", "ow", "oh"]).dropna()
    known = regions.groupby("image_id")[["ow", "oh"]].first()
    width = tasks.image_id.map(known.ow).fillna(pd.to_numeric(tasks.width, errors="coerce"))
    height = tasks.image_id.map(known.oh).fillna(pd.to_numeric(tasks.height, errors="coerce"))
    paths, hashes = [], []
    for i, ref in enumerate(tqdm(tasks.ref, desc="images", unit="img", disable=len(tasks) < 1000
                                 or None, leave=False)):
        local = image_files.resolve(ref, root)
        if local is None:
            summary.images_missing += 1
        elif pd.isna(width.iat[i]) or pd.isna(height.iat[i]):
            width.iat[i], height.iat[i] = image_files.size(local)
        paths.append(str(local) if local else ref)
        hashes.append(image_files.sha256(local) if local and hash_images
                      else tasks.sha256.iat[i])
    tasks["path"], tasks["sha256"] = paths, hashes
    if tasks.split.isna().all():
        tasks = tasks.drop(columns="split")
    unknown = width.isna() | height.isna()
    bad = ~unknown & ((width <= 0) | (height <= 0))
    if unknown.any():
        summary.reject("task: image size unknown (no original_width/height in any result and the "
                       f"image is not found under --images-root {root})",
                       (tasks["where"] + ": " + tasks.ref)[unknown].tolist(), int(unknown.sum()))
    if bad.any():
        summary.reject("task: image width/height not positive", tasks["where"][bad].tolist(),
                       int(bad.sum()))
    keep = ~(unknown | bad)
    tasks["width"], tasks["height"] = width, height
    return coerce("images", tasks[keep].reset_index(drop=True))


def _dedupe_annotations(ann: pd.DataFrame, summary: ImportSummary, images: pd.DataFrame
                        ) -> pd.DataFrame:
    """Drop annotations of rejected tasks; keep the latest of one annotator's repeats."""
    if ann.empty:
        return ann
    orphan = ~ann.image_id.isin(images.image_id)
    if orphan.any():
        summary.reject("annotation: its task was rejected", ann["where"][orphan].tolist(),
                       int(orphan.sum()))
    ann = ann[~orphan]
    order = pd.to_datetime(ann.created_at, utc=True, errors="coerce", format="ISO8601")
    ann = ann.assign(_t=order).sort_values(["_t", "key"], na_position="first")
    repeat = ann.duplicated(["image_id", "annotator", "source"], keep="last")
    if repeat.any():
        summary.reject("annotation: same annotator annotated the task again (kept the latest)",
                       ann["where"][repeat].tolist(), int(repeat.sum()))
    return ann[~repeat].drop(columns="_t").sort_values("key").reset_index(drop=True)


def _build_boxes(reg: pd.DataFrame, images: pd.DataFrame, kept_keys: set, labels: list[str] | None,
                 summary: ImportSummary) -> pd.DataFrame:
    """Percent regions -> absolute pixel boxes, with every bad region counted by reason."""
    if reg.empty:
        return pd.DataFrame()
    reg = reg[reg.ann_key.isna() | reg.ann_key.isin(kept_keys)]
    reg = reg[reg.image_id.isin(images.image_id)].reset_index(drop=True)
    size = images.set_index("image_id")[["width", "height"]]
    img_w = reg.image_id.map(size.width).to_numpy(float)
    img_h = reg.image_id.map(size.height).to_numpy(float)
    ow = pd.to_numeric(reg.ow, errors="coerce").to_numpy(float)
    oh = pd.to_numeric(reg.oh, errors="coerce").to_numpy(float)
    ow, oh = np.where(np.isnan(ow), img_w, ow), np.where(np.isnan(oh), img_h, oh)
    x, y, w, h = (pd.to_numeric(reg[c], errors="coerce").to_numpy(float) for c in "xywh")
    rotation = pd.to_numeric(reg.rotation, errors="coerce").to_numpy(float)
    n_labels = reg["labels"].map(lambda v: len(v) if isinstance(v, list) else 0).to_numpy()
    label = reg["labels"].map(lambda v: v[0] if isinstance(v, list) and v else None)
    x0, y0, x1, y1 = x * ow / 100, y * oh / 100, (x + w) * ow / 100, (y + h) * oh / 100
    tol_x, tol_y = CLIP_TOLERANCE * img_w, CLIP_TOLERANCE * img_h
    overshoot = (x0 < 0) | (y0 < 0) | (x1 > img_w) | (y1 > img_h)
    outside = (x0 < -tol_x) | (y0 < -tol_y) | (x1 > img_w + tol_x) | (y1 > img_h + tol_y)
    cx0, cy0 = np.clip(x0, 0, img_w), np.clip(y0, 0, img_h)
    cx1, cy1 = np.clip(x1, 0, img_w), np.clip(y1, 0, img_h)
    reasons = [
        (~np.isfinite([x, y, w, h]).all(axis=0), "box: missing or non-numeric x/y/width/height"),
        ((w <= 0) | (h <= 0), "box: width or height <= 0 (negative or empty box)"),
        (np.abs(np.nan_to_num(rotation)) > 1e-6,
         "box: rotated rectangle (rotation != 0 is not supported; straighten it in Label Studio)"),
        (n_labels == 0, "box: no label"),
        (n_labels > 1, "box: several labels on one box"),
        ((np.abs(ow - img_w) > 0.5) | (np.abs(oh - img_h) > 0.5),
         "box: original_width/height differ from the image's size"),
        (outside, f"box: outside the image by more than {CLIP_TOLERANCE:.0%}"),
        ((cx1 <= cx0) | (cy1 <= cy0), "box: empty once clipped to the image"),
    ]
    if labels:
        reasons.append((~label.isin(labels).to_numpy() & (n_labels == 1),
                        f"box: label not in the label map {list(labels)}"))
    dup = reg.duplicated(["image_id", "annotator", "source", "object_id"]).to_numpy()
    reasons.append((dup, "box: duplicate region id in one annotation or prediction"))
    keep = summary.reject_where(reasons, reg["where"])
    summary.clipped_boxes += int((overshoot & keep).sum())
    source = reg.source
    score = pd.to_numeric(reg.score, errors="coerce").where(source != HUMAN)
    out = pd.DataFrame({
        "image_id": reg.image_id, "annotator": reg.annotator, "object_id": reg.object_id,
        "label": label, "x0": cx0, "y0": cy0, "x1": cx1, "y1": cy1, "score": score,
        "source": source})
    return out[keep].reset_index(drop=True)
