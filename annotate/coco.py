"""COCO instances + COCO captions <-> the four tables.

Standard COCO has no notion of annotators, so export adds three keys that COCO tools ignore:
`annotator`, `source` and `object_id` on each annotation (and `score` for model rows), plus a
top-level `twostage_annotations` list saying who looked at which image. Import reads them back
when present; a plain COCO file becomes one annotator, "coco", who saw every image.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from . import images as image_files
from .ls_import import ExportError, ImportSummary
from .schema import HUMAN, TableSet, coerce

PLAIN_COCO_ANNOTATOR = "coco"


def to_coco(ts: TableSet) -> tuple[dict, dict]:
    """(instances, captions) COCO dicts for the whole set; category ids follow the label map."""
    img = ts.images.reset_index(drop=True)
    coco_id = pd.Series(np.arange(1, len(img) + 1), index=img.image_id)
    images = [{"id": int(i), "file_name": r.path, "width": int(r.width), "height": int(r.height),
               "image_id": r.image_id,
               **({} if pd.isna(r.group_id) else {"group_id": r.group_id})}
              for i, r in zip(coco_id, img.itertuples(index=False), strict=True)]
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(ts.labels)]
    cat_id = {name: i + 1 for i, name in enumerate(ts.labels)}
    b = ts.boxes
    w, h = (b.x1 - b.x0).to_numpy(), (b.y1 - b.y0).to_numpy()
    frame = pd.DataFrame({
        "id": np.arange(1, len(b) + 1), "image_id": b.image_id.map(coco_id).to_numpy(),
        "category_id": b.label.map(cat_id).to_numpy(),
        "bbox": np.stack([b.x0, b.y0, w, h], axis=1).tolist() if len(b) else [],
        "area": w * h, "iscrowd": 0, "annotator": b.annotator.to_numpy(object),
        "source": b.source.to_numpy(object), "object_id": b.object_id.to_numpy(object),
        "score": b.score.to_numpy(float)})
    annotations = [{k: v for k, v in rec.items() if not (k == "score" and np.isnan(v))}
                   for rec in frame.to_dict("records")]
    seen = ts.annotations.assign(image_id=ts.annotations.image_id.map(coco_id))
    seen = seen.assign(created_at=seen.created_at.map(
        lambda t: None if pd.isna(t) else t.isoformat()), lead_time=seen.lead_time.astype(object)
        .where(seen.lead_time.notna(), None))
    instances = {"info": {"description": "twostage export"}, "images": images,
                 "categories": categories, "annotations": annotations,
                 "twostage_annotations": seen.to_dict("records")}
    c = ts.captions
    captions = {"info": instances["info"], "images": images, "annotations": [
        {"id": i + 1, "image_id": int(coco_id[r.image_id]), "caption": r.caption,
         "annotator": r.annotator, "source": r.source}
        for i, r in enumerate(c.itertuples(index=False))]}
    return instances, captions


def _load(path: str | os.PathLike, keys: tuple[str, ...]) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ExportError(f"{path}: no such file") from err
    except json.JSONDecodeError as err:
        raise ExportError(f"{path}: not valid JSON at line {err.lineno}, column {err.colno}: "
                          f"{err.msg}") from err
    missing = [k for k in keys if not isinstance(data, dict) or k not in data]
    if missing:
        raise ExportError(f"{path}: not a COCO file (missing {missing})")
    return data


def from_coco(instances_path: str | os.PathLike, captions_path: str | os.PathLike | None = None,
              images_root: str | os.PathLike | None = None) -> tuple[TableSet, ImportSummary]:
    """Read COCO instances (and optionally captions) into a validated `TableSet`."""
    inst = _load(instances_path, ("images", "annotations", "categories"))
    summary = ImportSummary(source=str(instances_path), shape="COCO")
    root = Path(images_root) if images_root is not None else Path(instances_path).parent
    imgs = pd.DataFrame(inst["images"])
    summary.tasks_read = len(imgs)
    ids = imgs["image_id"].fillna(imgs["id"]) if "image_id" in imgs else imgs["id"]
    id_map = dict(zip(imgs["id"], ids.astype(str), strict=True))
    paths = [image_files.resolve(str(f), root) for f in imgs["file_name"]]
    summary.images_missing = sum(p is None for p in paths)
    images = coerce("images", pd.DataFrame({
        "image_id": ids.astype(str), "width": imgs["width"], "height": imgs["height"],
        "path": [str(p) if p else f for p, f in zip(paths, imgs["file_name"], strict=True)],
        "group_id": imgs.get("group_id"),
        "sha256": [image_files.sha256(p) if p else None for p in paths]}))
    labels = [c["name"] for c in sorted(inst["categories"], key=lambda c: c["id"])]
    cat_name = {c["id"]: c["name"] for c in inst["categories"]}
    ann = pd.DataFrame(inst["annotations"], columns=["id", "image_id", "category_id", "bbox"])
    extra = pd.DataFrame(inst["annotations"], columns=["annotator", "source", "object_id", "score"])
    bbox = np.array([b if isinstance(b, list) and len(b) == 4 else [np.nan] * 4
                     for b in ann["bbox"]], dtype=float).reshape(-1, 4)
    source = extra.source.fillna(HUMAN)
    boxes = pd.DataFrame({
        "image_id": ann.image_id.map(id_map), "annotator": extra.annotator.fillna(
            PLAIN_COCO_ANNOTATOR).where(source == HUMAN, source),
        "object_id": extra.object_id.fillna(ann["id"].astype(str)),
        "label": ann.category_id.map(cat_name), "x0": bbox[:, 0], "y0": bbox[:, 1],
        "x1": bbox[:, 0] + bbox[:, 2], "y1": bbox[:, 1] + bbox[:, 3],
        "score": extra.score, "source": source})
    reasons = [(boxes.image_id.isna(), "box: image_id not in `images`"),
               (boxes.label.isna(), "box: category_id not in `categories`"),
               (~np.isfinite(bbox).all(axis=1), "box: bbox is not [x, y, width, height]"),
               ((bbox[:, 2] <= 0) | (bbox[:, 3] <= 0), "box: bbox width or height <= 0")]
    boxes = boxes[summary.reject_where(reasons, "annotation id " + ann["id"].astype(str))]
    if "twostage_annotations" in inst:
        seen = pd.DataFrame(inst["twostage_annotations"])
        seen["image_id"] = seen.image_id.map(id_map)
    else:  # plain COCO: one annotator who looked at every image
        seen = pd.DataFrame({"image_id": images.image_id, "annotator": PLAIN_COCO_ANNOTATOR,
                             "source": HUMAN})
    captions = pd.DataFrame(columns=["image_id", "annotator", "caption", "source"])
    if captions_path is not None:
        caps = _load(captions_path, ("annotations",))["annotations"]
        captions = pd.DataFrame(caps, columns=["image_id", "annotator", "caption", "source"])
        captions["image_id"] = captions.image_id.map(id_map)
        captions["annotator"] = captions.annotator.fillna(PLAIN_COCO_ANNOTATOR)
        captions["source"] = captions.source.fillna(HUMAN)
    ts = TableSet(images=images, annotations=seen, boxes=boxes, captions=captions, labels=labels,
                  meta={"source": str(instances_path)}).validate()
    summary.count_kept(ts)
    summary.annotations_read = summary.annotations_kept
    return ts, summary
