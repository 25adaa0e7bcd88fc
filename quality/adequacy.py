"""Eval-set adequacy: how wide the bootstrap confidence interval of a headline metric is at the
size of the val and test splits, i.e. the smallest difference between two models those splits
can show. Per-image scores come from the human ceiling (each annotator's caption against the
others'), the one per-image caption score available before any model exists; pass a model's
per-image scores to measure with those instead."""

from __future__ import annotations

import numpy as np
import pandas as pd

from annotate.bootstrap import draws, percentile_interval
from annotate.caption_metrics import cider_d, rouge_l
from annotate.schema import TableSet

from .ceiling import leave_one_out


def ci_width(scores: np.ndarray, n: int, n_boot: int = 1000, confidence: float = 0.95,
             seed: int = 0) -> float:
    """Width of the percentile bootstrap interval of the mean of `n` images drawn from
    `scores` (the spread a test set of `n` images would show)."""
    scores = np.asarray(scores, np.float64)
    if len(scores) == 0 or n < 1:
        return float("nan")
    means = scores[draws(len(scores), n_boot, seed, size=n)].mean(axis=1)  # images resampled
    low, high = percentile_interval(means, confidence)
    return high - low


def human_scores(ts: TableSet) -> pd.DataFrame:
    """Per image: mean CIDEr-D and ROUGE-L of its captions scored leave-one-out."""
    items = leave_one_out(ts.captions)
    if items.empty:
        return pd.DataFrame(columns=["image_id", "cider_d", "rouge_l"])
    items["cider_d"] = cider_d(items.hypothesis.tolist(), items.references.tolist())
    items["rouge_l"] = rouge_l(items.hypothesis.tolist(), items.references.tolist())
    return items.groupby("image_id")[["cider_d", "rouge_l"]].mean().reset_index()


def adequacy(ts: TableSet, scores: pd.DataFrame | None = None, column: str = "split",
             n_boot: int = 1000, seed: int = 0) -> dict:
    """For each non-train split and metric: images, the metric's mean, and its CI width."""
    scores = human_scores(ts) if scores is None else scores
    if column not in ts.images.columns or scores.empty:
        return {}
    sizes = ts.images[column].value_counts()
    metrics = [c for c in scores.columns if c != "image_id"]
    out = {}
    for name, n in sizes.items():
        if name == "train":
            continue
        out[str(name)] = {"images": int(n), **{
            m: {"mean": float(scores[m].mean()),
                "ci_width": ci_width(scores[m].to_numpy(), int(n), n_boot, seed=seed)}
            for m in metrics}}
    return out
