"""Box geometry shared by every layer: row-wise IoU and the 1 - IoU distance of agreement."""

from __future__ import annotations

import numpy as np


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of two (n, 4) arrays of x0, y0, x1, y1 boxes."""
    width = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    height = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = width * height
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a + area_b - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def box_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 - IoU over rows of (present, x0, y0, x1, y1): absent vs absent 0, absent vs a box 1."""
    present_a, present_b = a[:, 0] > 0, b[:, 0] > 0
    d = 1 - iou(np.nan_to_num(a[:, 1:]), np.nan_to_num(b[:, 1:]))
    d = np.where(present_a & present_b, d, 1.0)
    return np.where(~present_a & ~present_b, 0.0, d)


box_distance.__name__ = "1-IoU"
