"""Input noise for robustness: corrupt training layouts the way stage 1 errs.

Rates are set by hand or calibrated from a stage-1 error table: one row per gold object or
prediction, with `image_id`, `status` (matched / missed / spurious / wrong_label), `gold_label`,
`pred_label` and `iou` (matched and wrong_label rows). Every corruption is vectorised over the
whole boxes table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from annotate.errors import UserError
from annotate.schema import check_errors

COORDS = ["x0", "y0", "x1", "y1"]


@dataclass
class Noise:
    """Corruption rates: drop (per object), spurious (expected extra objects per image), swap
    (per object, label changed), jitter (sd of each corner, in box widths/heights), scale (sd of
    log size change). `confusion` (gold label -> {pred label: p}) replaces uniform swaps."""

    drop: float = 0.0
    spurious: float = 0.0
    swap: float = 0.0
    jitter: float = 0.0
    scale: float = 0.0
    confusion: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("drop", "swap"):
            if not 0 <= getattr(self, name) <= 1:
                raise UserError(f"noise {name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("spurious", "jitter", "scale"):
            if getattr(self, name) < 0:
                raise UserError(f"noise {name} must be >= 0, got {getattr(self, name)}")

    @property
    def active(self) -> bool:
        return any((self.drop, self.spurious, self.swap, self.jitter, self.scale))

    def to_dict(self) -> dict:
        return asdict(self)


def calibrate(errors: pd.DataFrame) -> Noise:
    """Noise rates that reproduce a stage-1 error table (see module docstring)."""
    check_errors(errors)
    counts = errors.status.value_counts()
    gold = counts.get("matched", 0) + counts.get("missed", 0) + counts.get("wrong_label", 0)
    images = max(errors.image_id.nunique(), 1)
    found = errors[errors.status.isin(["matched", "wrong_label"])]
    confusion = (pd.crosstab(found.gold_label, found.pred_label, normalize="index")
                 if len(found) else pd.DataFrame())
    swap = counts.get("wrong_label", 0) / max(len(found), 1)
    iou = found.iou.dropna()
    return Noise(drop=counts.get("missed", 0) / max(gold, 1),
                 spurious=counts.get("spurious", 0) / images, swap=float(swap),
                 jitter=jitter_for_iou(float(iou.median())) if len(iou) else 0.0,
                 confusion={g: {p: float(v) for p, v in row.items() if v > 0}
                            for g, row in confusion.iterrows()})


def jitter_for_iou(median_iou: float, seed: int = 0) -> float:
    """The corner jitter (in box sizes) whose boxes keep `median_iou` with the original."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(0, 0.5, 101)
    noise = rng.normal(size=(4000, 4))
    medians = []
    for sd in grid:
        moved = np.array([0, 0, 1, 1]) + sd * noise
        moved[:, 2:] = np.maximum(moved[:, 2:], moved[:, :2] + 1e-3)
        inter = (np.clip(np.minimum(moved[:, 2], 1) - np.maximum(moved[:, 0], 0), 0, None)
                 * np.clip(np.minimum(moved[:, 3], 1) - np.maximum(moved[:, 1], 0), 0, None))
        area = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
        medians.append(np.median(inter / (1 + area - inter)))
    return float(grid[np.argmin(np.abs(np.asarray(medians) - median_iou))])


def corrupt(boxes: pd.DataFrame, images: pd.DataFrame, noise: Noise, labels: list[str],
            rng: np.random.Generator) -> pd.DataFrame:
    """A corrupted copy of `boxes` (one view): objects dropped, labels swapped, boxes moved and
    resized within the image, spurious objects added."""
    if not noise.active:
        return boxes
    size = images.drop_duplicates("image_id").set_index("image_id")[["width", "height"]]
    out = boxes[rng.random(len(boxes)) >= noise.drop].copy()
    out["label"] = _swap(out.label.astype(object).to_numpy(), noise, labels, rng)
    w = (out.x1 - out.x0).to_numpy()
    h = (out.y1 - out.y0).to_numpy()
    cx = (out.x0 + out.x1).to_numpy() / 2
    cy = (out.y0 + out.y1).to_numpy() / 2
    factor = np.exp(rng.normal(0, noise.scale, len(out))) if noise.scale else 1.0
    w, h = w * factor, h * factor
    corners = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    corners += rng.normal(0, noise.jitter, corners.shape) * np.stack([w, h, w, h], axis=1)
    out[COORDS] = corners
    extra = _spurious(out, boxes, size, noise.spurious, labels, rng)
    out = pd.concat([out, extra], ignore_index=True)
    return _clip(out, size)


def _swap(current: np.ndarray, noise: Noise, labels: list[str], rng) -> np.ndarray:
    current = current.copy()
    if noise.confusion:
        draw = rng.random(len(current))
        for gold, row in noise.confusion.items():
            at = np.flatnonzero(current == gold)
            if len(at) == 0:
                continue
            names, p = list(row), np.cumsum(list(row.values()))
            pick = np.minimum(np.searchsorted(p / p[-1], draw[at], side="right"), len(p) - 1)
            current[at] = np.asarray(names, object)[pick]
        return current
    if noise.swap and len(labels) > 1:
        change = rng.random(len(current)) < noise.swap
        index = pd.Index(labels).get_indexer(current[change])
        shift = rng.integers(1, len(labels), change.sum())
        current[change] = np.asarray(labels, object)[(np.maximum(index, 0) + shift) % len(labels)]
    return current


def _spurious(out: pd.DataFrame, original: pd.DataFrame, size: pd.DataFrame, rate: float,
              labels: list[str], rng) -> pd.DataFrame:
    images = original.image_id.unique()
    if not rate or len(original) == 0 or len(images) == 0:
        return out.iloc[:0]
    per_image = rng.poisson(rate, len(images))
    owner = np.repeat(images, per_image)
    n = len(owner)
    template = original.iloc[rng.integers(0, len(original), n)]
    w = (template.x1 - template.x0).to_numpy()
    h = (template.y1 - template.y0).to_numpy()
    width = size.width.reindex(owner).to_numpy(np.float64)
    height = size.height.reindex(owner).to_numpy(np.float64)
    x0 = rng.uniform(0, np.maximum(width - w, 1))
    y0 = rng.uniform(0, np.maximum(height - h, 1))
    extra = template.copy()
    extra["image_id"] = owner
    extra["object_id"] = [f"noise{k}" for k in range(n)]
    extra["label"] = np.asarray(labels, object)[rng.integers(0, len(labels), n)]
    extra[COORDS] = np.stack([x0, y0, x0 + w, y0 + h], axis=1)
    return extra


def _clip(boxes: pd.DataFrame, size: pd.DataFrame) -> pd.DataFrame:
    width = boxes.image_id.map(size.width).to_numpy(np.float64)
    height = boxes.image_id.map(size.height).to_numpy(np.float64)
    limit = np.stack([width, height, width, height], axis=1)
    coords = np.clip(boxes[COORDS].to_numpy(np.float64), 0, limit)
    keep = (coords[:, 2] - coords[:, 0] > 1) & (coords[:, 3] - coords[:, 1] > 1)
    boxes = boxes.copy()
    boxes[COORDS] = coords
    return boxes[keep].reset_index(drop=True)
