"""The detections stage 2 (or an annotator) receives from the detector: those at or above an
operating threshold, optionally with overlapping detections suppressed class-agnostically.

Which threshold and which IoU a run uses is chosen on validation by stage-2 score
(`quality.cascade.threshold`) and written to the detector folder's `threshold.json`; everything
that hands detections on (the pipeline, the Label Studio ML backend) applies that record here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from annotate.runtime.errors import UserError

#: ultralytics' default prediction confidence: the threshold a team would use without choosing
#: one (the reference the chosen hand-over is compared with, and the ML backend's fallback).
ULTRALYTICS_CONF = 0.25


def at_threshold(boxes: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """The detections with confidence `score` >= threshold."""
    if "score" not in boxes.columns:
        raise UserError("predicted boxes have no `score` column: a threshold needs detector "
                        "confidences (stage1-detect predict writes them)")
    return boxes[boxes.score.to_numpy(np.float64) >= threshold].reset_index(drop=True)


def suppress(boxes: pd.DataFrame, iou: float | None) -> pd.DataFrame:
    """Class-agnostic non-maximum suppression per image: of boxes overlapping by more than
    `iou`, whatever their classes, the one with the higher `score` stays (None: all stay).

    >>> boxes = pd.DataFrame({"image_id": ["a", "a", "a"], "label": ["cat", "dog", "cat"],
    ...                       "x0": [0, 1, 50], "y0": [0, 1, 50], "x1": [10, 11, 60],
    ...                       "y1": [10, 11, 60], "score": [0.9, 0.4, 0.8]})
    >>> suppress(boxes, 0.5).label.tolist()  # the dog on the cat goes, the far cat stays
    ['cat', 'cat']
    """
    if iou is None or boxes.empty:
        return boxes
    import torch
    from torchvision.ops import batched_nms

    image = pd.factorize(boxes.image_id)[0]
    keep = batched_nms(torch.as_tensor(boxes[["x0", "y0", "x1", "y1"]].to_numpy(np.float64)),
                       torch.as_tensor(boxes.score.to_numpy(np.float64)),
                       torch.as_tensor(image), float(iou)).numpy()
    return boxes.iloc[np.sort(keep)].reset_index(drop=True)


def hand_over(boxes: pd.DataFrame, record: dict) -> pd.DataFrame:
    """The detections handed on under a `threshold.json` record: at or above its `chosen`
    threshold, then suppressed at its `suppress_iou` (when it chose one)."""
    return suppress(at_threshold(boxes, record["chosen"]), record.get("suppress_iou"))
