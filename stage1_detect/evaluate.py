"""Detector evaluation: mAP from ultralytics' validator, and a per-object error table that
labels every gold object matched / missed and every prediction matched / spurious / wrong
label, with its IoU. The table feeds stage-2 noise calibration and robustness analysis."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from annotate.metrics.geometry import iou
from annotate.tables.schema import ERROR_COLUMNS
from stage1_detect.engine import device_or_auto, ultralytics
from stage1_detect.train import weights_of

#: A detection matches a gold object of its image at this IoU or more (COCO's AP50 rule).
MATCH_IOU = 0.5


def match_errors(gold: pd.DataFrame, predicted: pd.DataFrame, image_ids=None,
                 iou_threshold: float = MATCH_IOU) -> pd.DataFrame:
    """One row per gold object and per prediction of the images in `image_ids` (default: every
    image with gold or predicted boxes).

    Per image, gold and predicted boxes are matched one to one by the Hungarian algorithm on
    IoU (class-agnostic, pairs below `iou_threshold` not allowed): a matched pair is `matched`
    when the labels agree, else `wrong_label`; a gold box left over is `missed`, a prediction
    left over `spurious`. `iou` is the matched pair's; of a spurious prediction, its largest
    IoU with any gold box of the image (0 when none): high for a second box on a real object.
    """
    ids = pd.Index(pd.unique(pd.concat([gold.image_id, predicted.image_id]))
                   if image_ids is None else pd.unique(pd.Series(list(image_ids))))
    gold = gold[gold.image_id.isin(ids)].reset_index(drop=True)
    predicted = predicted[predicted.image_id.isin(ids)].reset_index(drop=True)
    pairs = gold.reset_index().merge(predicted.reset_index(), on="image_id",
                                     suffixes=("_g", "_p"))
    coords_g = pairs[["x0_g", "y0_g", "x1_g", "y1_g"]].to_numpy(np.float64)
    coords_p = pairs[["x0_p", "y0_p", "x1_p", "y1_p"]].to_numpy(np.float64)
    pairs["iou"] = iou(coords_g, coords_p)
    nearest = pairs.groupby("index_p").iou.max()  # for a spurious prediction: a duplicate?
    pairs = pairs[pairs.iou >= iou_threshold]
    chosen_g, chosen_p, chosen_iou = [], [], []
    for _, block in pairs.groupby("image_id", sort=False):  # small per-image problems
        g = pd.factorize(block.index_g)
        p = pd.factorize(block.index_p)
        cost = np.full((len(g[1]), len(p[1])), 2.0)
        cost[g[0], p[0]] = 1 - block.iou.to_numpy()
        rows, cols = linear_sum_assignment(cost)
        ok = cost[rows, cols] <= 1 - iou_threshold + 1e-12
        chosen_g.append(g[1].to_numpy()[rows[ok]])
        chosen_p.append(p[1].to_numpy()[cols[ok]])
        chosen_iou.append(1 - cost[rows[ok], cols[ok]])
    mg = np.concatenate(chosen_g) if chosen_g else np.empty(0, int)
    mp = np.concatenate(chosen_p) if chosen_p else np.empty(0, int)
    mi = np.concatenate(chosen_iou) if chosen_iou else np.empty(0)
    same = gold.label.to_numpy(object)[mg] == predicted.label.to_numpy(object)[mp]
    matched = pd.DataFrame({
        "image_id": gold.image_id.to_numpy(object)[mg],
        "status": np.where(same, "matched", "wrong_label"),
        "gold_label": gold.label.to_numpy(object)[mg],
        "pred_label": predicted.label.to_numpy(object)[mp], "iou": mi,
        "gold_object_id": gold.object_id.to_numpy(object)[mg],
        "pred_object_id": predicted.object_id.to_numpy(object)[mp],
        "score": predicted.score.to_numpy(np.float64)[mp]})
    missed = gold.drop(index=mg)
    spurious = predicted.drop(index=mp)
    return pd.concat([
        matched,
        pd.DataFrame({"image_id": missed.image_id.to_numpy(object), "status": "missed",
                      "gold_label": missed.label.to_numpy(object), "pred_label": None,
                      "iou": np.nan, "gold_object_id": missed.object_id.to_numpy(object),
                      "pred_object_id": None, "score": np.nan}),
        pd.DataFrame({"image_id": spurious.image_id.to_numpy(object), "status": "spurious",
                      "gold_label": None, "pred_label": spurious.label.to_numpy(object),
                      "iou": nearest.reindex(spurious.index).fillna(0.0).to_numpy(np.float64),
                      "gold_object_id": None,
                      "pred_object_id": spurious.object_id.to_numpy(object),
                      "score": spurious.score.to_numpy(np.float64)}),
    ], ignore_index=True)[ERROR_COLUMNS]


def error_rates(errors: pd.DataFrame) -> pd.DataFrame:
    """Overall and per-class rates: of gold objects missed / wrongly labelled, of predictions
    spurious; mean IoU of matched pairs. Index: 'all' then each class."""
    def rates(frame: pd.DataFrame) -> dict:
        counts = frame.status.value_counts()
        gold = counts.get("matched", 0) + counts.get("missed", 0) + counts.get("wrong_label", 0)
        preds = counts.get("matched", 0) + counts.get("spurious", 0) + counts.get(
            "wrong_label", 0)
        found = frame[frame.status.isin(["matched", "wrong_label"])]
        return {"gold": int(gold), "predictions": int(preds),
                "miss_rate": counts.get("missed", 0) / gold if gold else np.nan,
                "wrong_label_rate": counts.get("wrong_label", 0) / gold if gold else np.nan,
                "spurious_rate": counts.get("spurious", 0) / preds if preds else np.nan,
                "mean_iou": float(found.iou.mean()) if len(found) else np.nan}

    table = {"all": rates(errors)}
    label = errors.gold_label.fillna(errors.pred_label)
    for name, frame in errors.groupby(label):
        table[name] = rates(frame)
    return pd.DataFrame(table).T


def map_scores(run_or_weights: str | os.PathLike, data_yaml: str | os.PathLike,
               split: str = "test", imgsz: int | None = None, device: str | None = None
               ) -> dict[str, float]:
    """mAP50 and mAP50-95 on one split of a YOLO data set, from ultralytics' validator."""
    model = ultralytics().YOLO(str(weights_of(run_or_weights)))
    imgsz = imgsz or int(model.overrides.get("imgsz", 640))
    metrics = model.val(data=str(data_yaml), split=split, imgsz=imgsz, plots=False,
                        device=device_or_auto(device), verbose=False, batch=16)
    return {"map50": float(metrics.box.map50), "map50_95": float(metrics.box.map)}
