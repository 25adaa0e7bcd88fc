"""The stage-1 -> stage-2 hand-over, chosen for what the cascade delivers: the detector's
confidence cut-off, and whether overlapping detections are suppressed class-agnostically (at
which IoU), whose layouts give the best stage-2 score on the validation split.

Detection metrics (mAP) integrate over every threshold and so choose none; a fixed 0.25
(ultralytics' default) trades misses against spurious objects without asking what stage 2
makes of either. Here each candidate threshold's layouts are captioned by the gold-trained
stage-2 model and scored against the validation captions; the best one is used on the test
split. The validation score of the chosen threshold is optimistic (it won a comparison on
those images), which is why the test figures are read, not this one.

Suppression: a detector that fires twice on one object with two classes (the demo's deployed
detector: most of its spurious boxes sit on a real object) hands stage 2 a duplicate it cannot
tell from a second object. Class-agnostic non-maximum suppression (torchvision's `nms`, the
kept implementation ultralytics also uses) keeps the surer of two boxes that overlap by more
than the IoU; whether it helps, and at which IoU, is decided like the threshold: at the best
thresholds, each IoU of `SUPPRESS` is scored on validation and kept only when it scores higher.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from annotate.runtime.errors import UserError
from stage1_detect.handover import at_threshold, hand_over, suppress
from stage1_detect.predict import RAW_CONF

#: Candidate confidence thresholds; the detector predicts once at the lowest (its raw
#: detections, `stage1_detect.predict.RAW_CONF`).
THRESHOLDS = (RAW_CONF, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7)
FLOOR = min(THRESHOLDS)
#: Tried too when the best candidate is the highest: a best at the edge of the grid means the
#: true best may lie beyond it. (Below the lowest there are no raw detections to try.)
WIDER = (0.8, 0.9, 0.95)
#: IoUs tried for class-agnostic suppression, at the `SUPPRESS_AT` best thresholds.
SUPPRESS = (0.7, 0.5, 0.3)
SUPPRESS_AT = 3


def score_curve(boxes: pd.DataFrame, images: pd.DataFrame,
                score: Callable[[pd.DataFrame], pd.Series],
                thresholds=THRESHOLDS) -> pd.DataFrame:
    """Per threshold: the mean stage-2 score of `images` when stage 2 reads the detections at
    or above it (`score(boxes)` returns one score per image), and boxes per image."""
    rows = []
    for threshold in sorted(thresholds):
        kept = at_threshold(boxes, threshold)
        per_image = score(kept)
        rows.append({"threshold": float(threshold), "score": float(per_image.mean()),
                     "boxes_per_image": len(kept) / max(len(images), 1)})
    return pd.DataFrame(rows)


def search(boxes: pd.DataFrame, images: pd.DataFrame,
           score: Callable[[pd.DataFrame], pd.Series], thresholds=THRESHOLDS
           ) -> tuple[pd.DataFrame, float, list[float]]:
    """`score_curve` over `thresholds`, widened upwards (`WIDER`) when the best is the highest
    candidate; returns the curve, the choice and the thresholds the widening added."""
    curve = score_curve(boxes, images, score, thresholds)
    chosen, widened = choose(curve), []
    if chosen == max(thresholds):  # the best may lie beyond the grid: look there too
        widened = [w for w in WIDER if w > chosen]
        curve = pd.concat([curve, score_curve(boxes, images, score, widened)],
                          ignore_index=True)
        chosen = choose(curve)
    return curve, chosen, widened


def choose(curve: pd.DataFrame) -> float:
    """The threshold with the highest score; among equal scores the highest threshold (the
    same result from fewer, surer detections)."""
    if curve.empty or curve.score.isna().all():
        raise UserError("no threshold has a score: the validation split has no captioned "
                        "images")
    best = curve.score.max()
    return float(curve.threshold[np.isclose(curve.score, best, rtol=0, atol=1e-12)].max())


def suppression_curve(boxes: pd.DataFrame, images: pd.DataFrame,
                      score: Callable[[pd.DataFrame], pd.Series], curve: pd.DataFrame,
                      ious=SUPPRESS, top: int = SUPPRESS_AT) -> pd.DataFrame:
    """Per IoU of `ious` and per threshold among the `top` best of `curve`: the mean stage-2
    score when overlapping detections are suppressed, and boxes per image."""
    best = curve.sort_values(["score", "threshold"], ascending=False).threshold.head(top)
    rows = []
    for threshold in sorted(best):
        kept = at_threshold(boxes, threshold)
        for iou in ious:
            suppressed = suppress(kept, iou)
            rows.append({"threshold": float(threshold), "iou": float(iou),
                         "score": float(score(suppressed).mean()),
                         "boxes_per_image": len(suppressed) / max(len(images), 1)})
    return pd.DataFrame(rows, columns=["threshold", "iou", "score", "boxes_per_image"])


def choose_suppression(curve: pd.DataFrame, suppressed: pd.DataFrame, chosen: float
                       ) -> tuple[float, float | None]:
    """The hand-over: suppression at the (threshold, IoU) that scores highest, only when it
    beats the best unsuppressed threshold; among equal scores the higher threshold, then the
    higher IoU (the lighter touch)."""
    plain = float(curve.score.max())
    if suppressed.empty or not suppressed.score.max() > plain + 1e-12:
        return chosen, None
    top = suppressed[np.isclose(suppressed.score, suppressed.score.max(), rtol=0, atol=1e-12)]
    row = top.sort_values(["threshold", "iou"], ascending=False).iloc[0]
    return float(row.threshold), float(row.iou)


def threshold_job(model_dir, detector, ts, thresholds=THRESHOLDS) -> dict:
    """Choose a detector's operating threshold by the stage-2 score of its layouts.

    Parameters
    ----------
    model_dir : path
        The stage-2 model that captions (the gold-trained one in a run).
    detector : path
        The detector's folder in the run, holding `raw_val.parquet` (and `raw_test.parquet`),
        predicted at `RAW_CONF`.
    ts : TableSet
        The split set: validation images and their human captions.
    thresholds : sequence of float
        Candidate confidence thresholds.

    Returns
    -------
    dict
        What `threshold.json` (in the detector's folder) holds: the curve (validation CIDEr-D
        and boxes per image per candidate), the suppression curve (the same at the best
        thresholds with class-agnostic suppression at each IoU of `SUPPRESS`), the choice
        (`chosen` and `suppress_iou`, None when suppression does not score higher), whether the
        threshold sits at the edge of the candidates, and the captioning model's version. The
        detections handed over (`hand_over`) are written as `predicted_val.parquet` and
        `predicted_test.parquet` beside it.
    """
    from annotate.runtime.atomic import write_json, write_parquet
    from annotate.runtime.errors import MissingFileError
    from annotate.tables.views import gold_boxes
    from quality import workspace
    from quality.cascade.scoring import per_image, references
    from quality.cascade.summary import PRIMARY_METRIC
    from stage2_generate.generate import Captioner

    detector = Path(detector)
    raw = {part: detector / f"raw_{part}.parquet" for part in ("val", "test")}
    if not raw["val"].exists():
        raise MissingFileError(f"{raw['val']}: no raw detections (stage1-detect predict RUN "
                               f"SPLIT --split val --conf {FLOOR} --out {raw['val']})")
    images = ts.images[ts.images.split == "val"]
    refs = references(ts, images.image_id)
    gold = gold_boxes(ts)

    captioner = Captioner(model_dir)  # candidates share most layouts: each is captioned once

    def score(boxes: pd.DataFrame) -> pd.Series:
        captions = captioner(boxes, images)
        return per_image(captions, refs, gold, [])[PRIMARY_METRIC]

    boxes = pd.read_parquet(raw["val"])
    boxes = boxes[boxes.image_id.isin(images.image_id)]
    curve, chosen, widened = search(boxes, images, score, thresholds)
    grid = [*thresholds, *widened]
    suppressed = suppression_curve(boxes, images, score, curve)
    handed, iou = choose_suppression(curve, suppressed, chosen)
    record = {"chosen": handed, "suppress_iou": iou, "metric": PRIMARY_METRIC, "split": "val",
              "images": len(refs), "model": captioner.version,
              "rule": "highest validation score; ties to the higher threshold; class-agnostic "
                      "suppression only when it scores higher",
              # the best at the lowest or highest candidate: the true best may lie beyond
              "at_edge": handed in (min(grid), max(grid)), "widened": widened,
              "curve": curve.to_dict("records"),
              "suppression": suppressed.to_dict("records")}
    for part, path in raw.items():
        if path.exists():
            write_parquet(detector / f"predicted_{part}.parquet",
                          hand_over(pd.read_parquet(path), record))
    write_json(detector / workspace.THRESHOLD, record)
    return record
