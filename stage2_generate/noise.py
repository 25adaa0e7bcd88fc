"""Input noise for robustness: corrupt training layouts the way stage 1 errs.

Rates are set by hand or calibrated from a stage-1 error table: one row per gold object or
prediction, with `image_id`, `status` (matched / missed / spurious / wrong_label), `gold_label`,
`pred_label` and `iou` (matched and wrong_label rows). Every corruption is vectorised over the
whole boxes table.

A model that reads confidences (`annotate.formats.layout`, `score_bins`) is trained on gold
layouts whose objects carry scores drawn from the detector's own score distributions
(`ScoreDistributions`, calibrated from the same error table's `score` column): real objects from
the scores of the detections that found an object, injected spurious objects from the scores of
the spurious detections.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from annotate.runtime.errors import UserError
from annotate.tables.schema import check_errors

COORDS = ["x0", "y0", "x1", "y1"]


@dataclass
class Noise:
    """Corruption rates: drop (per object), spurious (expected extra objects per image), swap
    (per object, label changed), jitter (sd of each corner, in box widths/heights), scale (sd of
    log size change). `confusion` (gold label -> {pred label: p}) replaces uniform swaps.
    `duplicate`: the share of spurious objects put on a real object (a second box on it with
    any label, as detectors mostly err) instead of anywhere in the image."""

    drop: float = 0.0
    spurious: float = 0.0
    swap: float = 0.0
    jitter: float = 0.0
    scale: float = 0.0
    confusion: dict[str, dict[str, float]] = field(default_factory=dict)
    duplicate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("drop", "swap", "duplicate"):
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


#: A spurious prediction overlapping a gold box at least this much counts as a duplicate.
DUPLICATE_IOU = 0.3


def calibrate(errors: pd.DataFrame) -> Noise:
    """Noise rates that reproduce a stage-1 error table (see module docstring); the share of
    duplicates from the spurious rows' `iou` (their overlap with the nearest gold box)."""
    check_errors(errors)
    counts = errors.status.value_counts()
    gold = counts.get("matched", 0) + counts.get("missed", 0) + counts.get("wrong_label", 0)
    images = max(errors.image_id.nunique(), 1)
    found = errors[errors.status.isin(["matched", "wrong_label"])]
    confusion = (pd.crosstab(found.gold_label, found.pred_label, normalize="index")
                 if len(found) else pd.DataFrame())
    swap = counts.get("wrong_label", 0) / max(len(found), 1)
    iou = found.iou.dropna()
    spurious = errors.iou[errors.status == "spurious"]
    return Noise(drop=counts.get("missed", 0) / max(gold, 1),
                 duplicate=float((spurious.fillna(0) >= DUPLICATE_IOU).mean())
                 if len(spurious) else 0.0,
                 spurious=counts.get("spurious", 0) / images, swap=float(swap),
                 jitter=jitter_for_iou(float(iou.median())) if len(iou) else 0.0,
                 confusion={g: {p: float(v) for p, v in row.items() if v > 0}
                            for g, row in confusion.iterrows()})


#: Quantile levels kept of each score distribution (0, 0.01, ..., 1): enough to redraw it.
QUANTILE_LEVELS = np.linspace(0, 1, 101)


@dataclass
class ScoreDistributions:
    """The detector's confidences at its operating threshold, as quantiles at
    `QUANTILE_LEVELS`: `found` (its detections on an object: matched or wrong label) and
    `spurious` (its detections on none). Draws are inverse-CDF samples (linear between the
    kept quantiles), so they reproduce both distributions."""

    found: list[float]
    spurious: list[float]

    def __post_init__(self) -> None:
        for name in ("found", "spurious"):
            values = np.asarray(getattr(self, name), np.float64)
            if len(values) and (len(values) != len(QUANTILE_LEVELS) or np.any(np.diff(values) < 0)
                                or np.any((values < 0) | (values > 1))):
                raise UserError(f"score distribution {name!r} must be {len(QUANTILE_LEVELS)} "
                                "non-decreasing quantiles in [0, 1] (or none)")

    def draw(self, kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
        """`n` scores from the `kind` ('found' or 'spurious') distribution."""
        quantiles = getattr(self, kind)
        if n and not quantiles:
            raise UserError(f"no {kind} detection scores to draw from: the error table they "
                            f"were calibrated on had no scored {kind} detection")
        return np.interp(rng.random(n), QUANTILE_LEVELS, quantiles) if n else np.empty(0)


def calibrate_scores(errors: pd.DataFrame) -> ScoreDistributions:
    """The score distributions of a stage-1 error table (see `ScoreDistributions`).

    A detector without spurious (or without found) detections gives an empty distribution,
    which only a draw from it refuses.

    Raises
    ------
    UserError
        When the table has no scores, or no scored detection at all.
    """
    check_errors(errors)
    if "score" not in errors.columns:
        raise UserError("the error table has no `score` column: score distributions need the "
                        "detector's confidences (stage1-detect evaluate writes them)")
    scores = errors.score.to_numpy(np.float64)
    found = scores[errors.status.isin(["matched", "wrong_label"]).to_numpy()]
    spurious = scores[(errors.status == "spurious").to_numpy()]
    found, spurious = found[~np.isnan(found)], spurious[~np.isnan(spurious)]
    if len(found) + len(spurious) == 0:
        raise UserError("score distributions need scored detections: the error table has none")

    def quantiles(values: np.ndarray) -> list[float]:
        return np.round(np.quantile(values, QUANTILE_LEVELS), 6).tolist() if len(values) else []

    return ScoreDistributions(found=quantiles(found), spurious=quantiles(spurious))


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
            rng: np.random.Generator, scores: ScoreDistributions | None = None
            ) -> pd.DataFrame:
    """A corrupted copy of `boxes` (one view): objects dropped, labels swapped, boxes moved and
    resized within the image, spurious objects added; with `scores`, every kept object gets a
    `score` drawn from the found distribution and every added one from the spurious one."""
    if not noise.active and scores is None:
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
    extra = _spurious(boxes, size, noise, labels, rng)
    if scores is not None:
        out["score"] = scores.draw("found", len(out), rng)
        extra = extra.assign(score=scores.draw("spurious", len(extra), rng))
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


def _spurious(original: pd.DataFrame, size: pd.DataFrame, noise: Noise, labels: list[str],
              rng) -> pd.DataFrame:
    """Extra objects, Poisson(`noise.spurious`) per image: a share `noise.duplicate` on one of
    the image's objects (shifted by up to a fifth of its size), the rest anywhere; any label."""
    images = original.image_id.unique()
    if not noise.spurious or len(original) == 0 or len(images) == 0:
        return original.iloc[:0]
    per_image = rng.poisson(noise.spurious, len(images))
    owner = np.repeat(images, per_image)
    n = len(owner)
    template = original.iloc[rng.integers(0, len(original), n)]
    w = (template.x1 - template.x0).to_numpy()
    h = (template.y1 - template.y0).to_numpy()
    width = size.width.reindex(owner).to_numpy(np.float64)
    height = size.height.reindex(owner).to_numpy(np.float64)
    x0 = rng.uniform(0, np.maximum(width - w, 1))
    y0 = rng.uniform(0, np.maximum(height - h, 1))
    on_object = rng.random(n) < noise.duplicate
    if on_object.any():  # one of the owner image's own objects, picked uniformly
        by_image = original.reset_index(drop=True).sort_values("image_id", kind="stable")
        first = by_image.groupby("image_id", sort=False).cumcount() == 0
        starts = pd.Series(np.flatnonzero(first), index=by_image.image_id[first].to_numpy())
        counts = by_image.image_id.value_counts()
        k = starts.reindex(owner[on_object]).to_numpy() + np.floor(
            rng.random(on_object.sum()) * counts.reindex(owner[on_object]).to_numpy()
        ).astype(np.int64)
        host = by_image.iloc[k]
        w[on_object] = (host.x1 - host.x0).to_numpy()
        h[on_object] = (host.y1 - host.y0).to_numpy()
        shift = rng.uniform(-0.2, 0.2, (on_object.sum(), 2))
        x0[on_object] = host.x0.to_numpy() + shift[:, 0] * w[on_object]
        y0[on_object] = host.y0.to_numpy() + shift[:, 1] * h[on_object]
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
