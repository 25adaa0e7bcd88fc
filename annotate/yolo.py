"""YOLO (ultralytics layout: images/<split>/, labels/<split>/, data.yaml) <-> the four tables.

A YOLO label file holds one view of an image, so export takes exactly one: consensus boxes, one
model's boxes, or one annotator's. Label Studio's own converter writes every annotation of a task
to the same label file (the last annotator wins, silently); we refuse to guess instead.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from . import images as image_files
from .ls_import import ImportSummary
from .schema import HUMAN, TableSet, model_source

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
PLAIN_YOLO_ANNOTATOR = "yolo"


def select_view(ts: TableSet, source: str, annotator: str | None = None) -> pd.DataFrame:
    """The boxes of one view: rows of `source` (and `annotator` for human rows); an error if
    that still leaves several annotators on one image."""
    boxes = ts.boxes[ts.boxes.source == source]
    if annotator is not None:
        boxes = boxes[boxes.annotator == annotator]
    per_image = boxes.groupby("image_id").annotator.nunique()
    if (per_image > 1).any():
        names = sorted(boxes.annotator.unique())[:5]
        raise ValueError(f"source {source!r} has several annotators on {int((per_image > 1).sum())}"
                         f" images ({', '.join(names)}...); choose one annotator (--annotator), or "
                         "build consensus boxes first (`quality consensus`)")
    return boxes


def _stem(image_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", image_id)


def to_yolo(ts: TableSet, out_dir: str | os.PathLike, source: str = HUMAN,
            annotator: str | None = None, copy: bool = False) -> Path:
    """Write a YOLO data set for one view of the boxes; return the path of its data.yaml.

    Images are symlinked (copied with `copy=True`) as <image_id><suffix>; splits come from the
    images' `split` column (all images go to train, used as val too, when there is none).
    For one annotator's boxes only the images that annotator completed are written: an image
    they never saw is unknown, not empty.
    """
    out = Path(out_dir)
    boxes = select_view(ts, source, annotator)
    images = ts.images
    if source == HUMAN:
        seen = ts.annotations[ts.annotations.source == HUMAN]
        if annotator is not None:
            seen = seen[seen.annotator == annotator]
        images = images[images.image_id.isin(seen.image_id)]
    missing = images[~images.path.map(lambda p: Path(p).is_file())]
    if len(missing):
        raise FileNotFoundError(f"YOLO export needs the image files; {len(missing)} not found, "
                                f"e.g. {missing.path.head(3).tolist()}")
    split = images["split"].fillna("train") if "split" in images else pd.Series("train",
                                                                                index=images.index)
    cls = {name: i for i, name in enumerate(ts.labels)}
    size = images.set_index("image_id")[["width", "height"]]
    w, h = boxes.image_id.map(size.width), boxes.image_id.map(size.height)
    lines = pd.DataFrame({
        "image_id": boxes.image_id,
        "line": boxes.label.map(cls).astype(str) + " "
        + ((boxes.x0 + boxes.x1) / 2 / w).map("{:.6f}".format) + " "
        + ((boxes.y0 + boxes.y1) / 2 / h).map("{:.6f}".format) + " "
        + ((boxes.x1 - boxes.x0) / w).map("{:.6f}".format) + " "
        + ((boxes.y1 - boxes.y0) / h).map("{:.6f}".format)})
    text = lines.groupby("image_id").line.agg("\n".join)
    for img, part in zip(images.itertuples(index=False), split, strict=True):
        src = Path(img.path)
        name = _stem(img.image_id)
        (out / "images" / part).mkdir(parents=True, exist_ok=True)
        (out / "labels" / part).mkdir(parents=True, exist_ok=True)
        target = out / "images" / part / f"{name}{src.suffix.lower()}"
        target.unlink(missing_ok=True)
        if copy:
            shutil.copy2(src, target)
        else:
            target.symlink_to(src.resolve())
        body = text.get(img.image_id, "")
        (out / "labels" / part / f"{name}.txt").write_text(body + ("\n" if body else ""))
    parts = sorted(set(split))
    spec = {"path": str(out.resolve()), "train": "images/train",
            "val": "images/val" if "val" in parts else "images/train",
            "names": dict(enumerate(ts.labels))}
    if "test" in parts:
        spec["test"] = "images/test"
    (out / "data.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return out / "data.yaml"


def from_yolo(data_yaml: str | os.PathLike, annotator: str = PLAIN_YOLO_ANNOTATOR
              ) -> tuple[TableSet, ImportSummary]:
    """Read a YOLO data set (all splits named in data.yaml) into a validated `TableSet`.

    Label rows with a 6th column (confidence) become model boxes (`model:yolo`)."""
    spec = yaml.safe_load(Path(data_yaml).read_text())
    root = Path(spec.get("path") or Path(data_yaml).parent)
    if not root.is_absolute():
        root = Path(data_yaml).parent / root
    names = spec["names"]
    labels = [names[i] for i in sorted(names)] if isinstance(names, dict) else list(names)
    summary = ImportSummary(source=str(data_yaml), shape="YOLO")
    image_rows, box_frames = [], []
    for part in ("train", "val", "test"):
        if not spec.get(part) or (part == "val" and spec.get("val") == spec.get("train")):
            continue
        for img in sorted(p for p in (root / spec[part]).rglob("*")
                          if p.suffix.lower() in IMAGE_SUFFIXES):
            width, height = image_files.size(img)
            image_rows.append({"image_id": img.stem, "path": str(img.resolve()), "width": width,
                               "height": height, "sha256": image_files.sha256(img),
                               "split": part})
            label_file = Path(str(img.parent).replace(f"{os.sep}images", f"{os.sep}labels",
                                                      1)) / f"{img.stem}.txt"
            if not label_file.exists() or label_file.stat().st_size == 0:
                continue
            rows = np.loadtxt(label_file, ndmin=2)
            if rows.shape[1] not in (5, 6):
                summary.reject("box: label line is not 'class cx cy w h [conf]'", str(label_file),
                               len(rows))
                continue
            cx, cy, bw, bh = rows[:, 1] * width, rows[:, 2] * height, rows[:, 3] * width, \
                rows[:, 4] * height
            conf = rows[:, 5] if rows.shape[1] == 6 else np.full(len(rows), np.nan)
            source = model_source("yolo") if rows.shape[1] == 6 else HUMAN
            box_frames.append(pd.DataFrame({
                "image_id": img.stem, "annotator": source if source != HUMAN else annotator,
                "object_id": [str(i) for i in range(len(rows))],
                "class_index": rows[:, 0].astype(int), "x0": np.clip(cx - bw / 2, 0, width),
                "y0": np.clip(cy - bh / 2, 0, height), "x1": np.clip(cx + bw / 2, 0, width),
                "y1": np.clip(cy + bh / 2, 0, height), "score": conf, "source": source}))
    images = pd.DataFrame(image_rows)
    boxes = pd.concat(box_frames, ignore_index=True) if box_frames else pd.DataFrame(
        columns=["class_index"])
    unknown = ~boxes.class_index.between(0, len(labels) - 1)
    if unknown.any():
        summary.reject(f"box: class index outside names (0..{len(labels) - 1})",
                       boxes.image_id[unknown].head(3).tolist(), int(unknown.sum()))
    boxes = boxes[~unknown]
    boxes["label"] = [labels[i] for i in boxes.class_index]
    annotations = pd.DataFrame({"image_id": images.get("image_id", []), "annotator": annotator,
                                "source": HUMAN})
    ts = TableSet(images=images, annotations=annotations, boxes=boxes.drop(columns="class_index"),
                  labels=labels, meta={"source": str(data_yaml)}).validate()
    summary.count_kept(ts)
    summary.tasks_read, summary.annotations_read = summary.tasks_kept, summary.annotations_kept
    return ts, summary
