"""The four tables -> YOLO (ultralytics layout: images/<split>/, labels/<split>/, data.yaml);
import: `yolo_import`.

A YOLO label file holds one view of an image, so export takes exactly one: consensus boxes, one
model's boxes, or one annotator's. Label Studio's own converter writes every annotation of a task
to the same label file (the last annotator wins, silently); we refuse to guess instead.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pandas as pd
import yaml

from annotate.formats.yolo_import import PLAIN_YOLO_ANNOTATOR, from_yolo
from annotate.runtime.errors import MissingFileError, UserError
from annotate.tables.schema import HUMAN, TableSet

__all__ = ["PLAIN_YOLO_ANNOTATOR", "from_yolo", "select_view", "to_yolo"]


def select_view(ts: TableSet, source: str, annotator: str | None = None) -> pd.DataFrame:
    """The boxes of one view: rows of `source` (and `annotator` for human rows); an error if
    that still leaves several annotators on one image."""
    boxes = ts.boxes[ts.boxes.source == source]
    if annotator is not None:
        boxes = boxes[boxes.annotator == annotator]
    per_image = boxes.groupby("image_id").annotator.nunique()
    if (per_image > 1).any():
        names = sorted(boxes.annotator.unique())[:5]
        raise UserError(f"source {source!r} has several annotators on {int((per_image > 1).sum())}"
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
        raise MissingFileError(f"YOLO export needs the image files; {len(missing)} not found, "
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
