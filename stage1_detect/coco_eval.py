"""COCO detection scores (AP, AP50, AP75, per-class AP) of stored boxes, by pycocotools' COCOeval,
the reference implementation, so predictions from any source (a Label Studio project's
predictions, another model, a COCO results file) are scored the way the literature scores them.

Gold boxes become COCO ground truth and `crowd` rows (COCO `iscrowd` regions, see
`annotate.formats.coco_import`) ignore regions: a detection on a crowd is neither a hit nor a false
positive. Areas are box areas, which changes nothing for AP/AP50/AP75 (all sizes); COCO's own
files carry segmentation areas, which matter only for the small/medium/large breakdown.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from annotate.formats import jsonio
from annotate.formats.coco_import import RESULTS_SOURCE, id_text
from annotate.runtime.errors import UserError
from annotate.tables.schema import CROWD, TableSet, coerce


def read_predictions(path: str | os.PathLike, ts: TableSet) -> pd.DataFrame:
    """A boxes table (Parquet) or a COCO results file (JSON list of image_id, category_id,
    bbox, score) as a boxes table; category ids are mapped with the COCO categories the set
    was imported with (`meta.coco_categories`), else 1..K in label-map order."""
    path = Path(path)
    if path.suffix != ".json":
        return coerce("boxes", pd.read_parquet(path))
    rows = jsonio.read_records(path, "a COCO results list of {image_id, category_id, bbox, "
                                     "score} objects")
    frame = pd.DataFrame(rows, columns=["image_id", "category_id", "bbox", "score"])
    ids = ts.meta.get("coco_categories") or {name: k + 1 for k, name in enumerate(ts.labels)}
    name_of = {int(v): k for k, v in ids.items()}
    bbox = np.array([b if isinstance(b, list) and len(b) == 4 else [np.nan] * 4
                     for b in frame.bbox], dtype=float).reshape(-1, 4)
    label = frame.category_id.map(name_of)
    bad = label.isna().to_numpy() | ~np.isfinite(bbox).all(axis=1)
    if bad.any():
        raise UserError(f"{path}: {int(bad.sum())} results with an unknown category_id or a bad "
                        f"bbox (first at index {int(np.flatnonzero(bad)[0])})")
    return coerce("boxes", pd.DataFrame({
        "image_id": frame.image_id.map(id_text),
        "annotator": RESULTS_SOURCE, "object_id": [str(i) for i in range(len(frame))],
        "label": label, "x0": bbox[:, 0], "y0": bbox[:, 1], "x1": bbox[:, 0] + bbox[:, 2],
        "y1": bbox[:, 1] + bbox[:, 3], "score": frame.score, "source": RESULTS_SOURCE}))


def coco_scores(ts: TableSet, gold: pd.DataFrame, predicted: pd.DataFrame,
                images: pd.DataFrame) -> dict:
    """COCO AP of stored boxes (pycocotools' COCOeval).

    Parameters
    ----------
    ts : TableSet
        The set: its label map and its crowd regions (ignore regions, as COCO treats them).
    gold : pandas.DataFrame
        The gold boxes.
    predicted : pandas.DataFrame
        The detections, with their confidence as `score`.
    images : pandas.DataFrame
        The images evaluated.

    Returns
    -------
    dict
        `ap` (IoU .50:.95), `ap50`, `ap75`, per-class AP, and the numbers of images and
        detections.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    index = {image_id: k + 1 for k, image_id in enumerate(images.image_id)}
    labels = list(ts.labels) or sorted(set(gold.label) | set(predicted.label))
    category = {name: k + 1 for k, name in enumerate(labels)}
    crowd = ts.boxes[(ts.boxes.source == CROWD) & ts.boxes.image_id.isin(index)]
    truth = pd.concat([gold[gold.image_id.isin(index)].assign(iscrowd=0),
                       crowd.assign(iscrowd=1)], ignore_index=True)
    truth = truth[truth.label.isin(category)]
    found = predicted[predicted.image_id.isin(index) & predicted.label.isin(category)]
    dataset = {
        "images": [{"id": k, "width": int(w), "height": int(h)} for k, w, h in
                   zip(index.values(), images.width, images.height, strict=True)],
        "categories": [{"id": k, "name": name} for name, k in category.items()],
        "annotations": [{"id": i + 1, "image_id": index[r.image_id],
                         "category_id": category[r.label], "iscrowd": int(r.iscrowd),
                         "bbox": [r.x0, r.y0, r.x1 - r.x0, r.y1 - r.y0],
                         "area": (r.x1 - r.x0) * (r.y1 - r.y0)}
                        for i, r in enumerate(truth.itertuples(index=False))]}
    if found.empty:
        return {"ap": 0.0, "ap50": 0.0, "ap75": 0.0, "per_class": {}, "images": len(index),
                "detections": 0, "tool": "pycocotools COCOeval (bbox)"}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        ground = COCO()
        ground.dataset = dataset
        ground.createIndex()
        results = ground.loadRes([
            {"image_id": index[r.image_id], "category_id": category[r.label],
             "bbox": [r.x0, r.y0, r.x1 - r.x0, r.y1 - r.y0],
             "score": 1.0 if pd.isna(r.score) else float(r.score)}
            for r in found.itertuples(index=False)])
        evaluation = COCOeval(ground, results, "bbox")
        evaluation.params.imgIds = list(index.values())
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    precision = evaluation.eval["precision"][:, :, :, 0, -1]  # IoU x recall x class, all, 100
    per_class = {}
    for k, name in enumerate(labels):
        values = precision[:, :, k]
        values = values[values > -1]
        if values.size:
            per_class[name] = float(values.mean())
    stats = evaluation.stats
    return {"ap": float(stats[0]), "ap50": float(stats[1]), "ap75": float(stats[2]),
            "per_class": per_class, "images": len(index), "detections": len(found),
            "tool": "pycocotools COCOeval (bbox)"}
