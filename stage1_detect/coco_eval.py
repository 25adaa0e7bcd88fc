"""COCO detection scores (AP, AP50, AP75, per-class AP) of stored boxes, by pycocotools' COCOeval,
the reference implementation, so predictions from any source (a Label Studio project's
predictions, another model, a COCO results file) are scored the way the literature scores them.

Gold boxes become COCO ground truth and `crowd` rows (COCO `iscrowd` regions, see
`annotate.formats.coco_import`) ignore regions: a detection on a crowd is neither a hit nor a false
positive. A ground-truth object's area (which decides small / medium / large) is the `area` the
COCO file gave it (its segmentation's area) when the set was imported from COCO, else its box
area, as COCO's own loader does for results. Detections of a category the set does not have are
counted and left out, as COCOeval leaves out categories outside its `catIds`; detections on
images the set does not have are counted and left out (pycocotools refuses the whole file).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from annotate.formats import jsonio
from annotate.formats.coco_import import RESULTS_SOURCE, id_text
from annotate.runtime.errors import UserError
from annotate.tables.schema import CROWD, TableSet, coerce

log = logging.getLogger(__name__)

#: Label of a detection whose COCO category the set does not have (then its id).
UNKNOWN_CATEGORY = "unknown category "
#: COCOeval's twelve summary numbers, in its order (`COCOeval.stats`).
COCO_STATS = ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large",
              "ar1", "ar10", "ar100", "ar_small", "ar_medium", "ar_large")


def read_predictions(path: str | os.PathLike, ts: TableSet) -> pd.DataFrame:
    """A boxes table (Parquet) or a COCO results file (JSON list of image_id, category_id,
    bbox, score) as a boxes table; category ids are mapped with the COCO categories the set
    was imported with (`meta.coco_categories`), else 1..K in label-map order. A category id
    the set does not have keeps its rows under the label "unknown category N" (counted and
    left out by `excluded_detections`)."""
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
    unknown = label.isna()
    label = label.where(~unknown, UNKNOWN_CATEGORY + frame.category_id.astype(str))
    bad = ~np.isfinite(bbox).all(axis=1)
    if bad.any():
        raise UserError(f"{path}: {int(bad.sum())} results with a bbox that is not four "
                        f"numbers (first at index {int(np.flatnonzero(bad)[0])})")
    if unknown.any():
        log.warning("%s: %d results have a category_id the set does not have (%s): counted "
                    "and left out of the scores", path, int(unknown.sum()),
                    ", ".join(sorted(map(str, frame.category_id[unknown].unique()))[:5]))
    return coerce("boxes", pd.DataFrame({
        "image_id": frame.image_id.map(id_text),
        "annotator": RESULTS_SOURCE, "object_id": [str(i) for i in range(len(frame))],
        "label": label, "x0": bbox[:, 0], "y0": bbox[:, 1], "x1": bbox[:, 0] + bbox[:, 2],
        "y1": bbox[:, 1] + bbox[:, 3], "score": frame.score, "source": RESULTS_SOURCE}))


def _id_order(ids: pd.Series) -> np.ndarray:
    """Positions of `ids` sorted as COCO sorts its image ids: as numbers when every id is an
    integer, else as text."""
    numbers = pd.to_numeric(ids, errors="coerce")
    integral = numbers.notna().all() and (numbers == numbers.round()).all()
    return np.argsort((numbers if integral else ids.astype(str)).to_numpy(), kind="stable")


def excluded_detections(ts: TableSet, predicted: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The detections that can be scored, and how many were left out and why: on an image the
    set does not have, or of a class outside its label map."""
    unknown_image = ~predicted.image_id.isin(ts.images.image_id)
    unknown_class = ~predicted.label.isin(ts.labels) & ~unknown_image if ts.labels else \
        pd.Series(False, index=predicted.index)
    counts = {"unknown_image": int(unknown_image.sum()),
              "unknown_category": int(unknown_class.sum())}
    if unknown_image.any():
        log.warning("%d detections are on images the set does not have (e.g. %s): counted and "
                    "left out", counts["unknown_image"],
                    ", ".join(map(str, predicted.image_id[unknown_image].unique()[:3])))
    return predicted[~unknown_image & ~unknown_class], counts


def coco_scores(ts: TableSet, gold: pd.DataFrame, predicted: pd.DataFrame,
                images: pd.DataFrame) -> dict:
    """COCO AP and AR of stored boxes (pycocotools' COCOeval): all twelve summary numbers.

    Parameters
    ----------
    ts : TableSet
        The set: its label map and its crowd regions (ignore regions, as COCO treats them).
    gold : pandas.DataFrame
        The gold boxes; an `area` column (kept from a COCO file) sets each object's size class.
    predicted : pandas.DataFrame
        The detections, with their confidence as `score`.
    images : pandas.DataFrame
        The images evaluated.

    Returns
    -------
    dict
        The twelve numbers under `COCO_STATS` names (`ap` is AP@[.50:.95], `ar100` AR with 100
        detections per image, `ap_small` ... by area; -1 where COCOeval has no object of that
        size, as it prints), per-class AP, and the numbers of images and detections.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    # COCO numbers images by id and COCOeval walks them in sorted order, which breaks ties
    # between equal scores on different images: number ours the same way
    images = images.iloc[_id_order(images.image_id)]
    index = {image_id: k + 1 for k, image_id in enumerate(images.image_id)}
    labels = list(ts.labels) or sorted(set(gold.label) | set(predicted.label))
    category = {name: k + 1 for k, name in enumerate(labels)}
    crowd = ts.boxes[(ts.boxes.source == CROWD) & ts.boxes.image_id.isin(index)]
    truth = pd.concat([gold[gold.image_id.isin(index)].assign(iscrowd=0),
                       crowd.assign(iscrowd=1)], ignore_index=True)
    truth = truth[truth.label.isin(category)]
    box_area = (truth.x1 - truth.x0) * (truth.y1 - truth.y0)
    area = (truth["area"].where(truth["area"] > 0, box_area) if "area" in truth.columns
            else box_area)
    found = predicted[predicted.image_id.isin(index) & predicted.label.isin(category)]
    dataset = {
        "images": [{"id": k, "width": int(w), "height": int(h)} for k, w, h in
                   zip(index.values(), images.width, images.height, strict=True)],
        "categories": [{"id": k, "name": name} for name, k in category.items()],
        "annotations": [{"id": i + 1, "image_id": index[r.image_id],
                         "category_id": category[r.label], "iscrowd": int(r.iscrowd),
                         "bbox": [r.x0, r.y0, r.x1 - r.x0, r.y1 - r.y0], "area": float(a)}
                        for i, (r, a) in enumerate(zip(truth.itertuples(index=False), area,
                                                       strict=True))]}
    base = {"images": len(index), "detections": len(found),
            "tool": "pycocotools COCOeval (bbox)"}
    if found.empty:
        return {**dict.fromkeys(COCO_STATS, 0.0), "per_class": {}, **base}
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
    return {**{name: float(v) for name, v in zip(COCO_STATS, evaluation.stats, strict=True)},
            "per_class": per_class, **base}
