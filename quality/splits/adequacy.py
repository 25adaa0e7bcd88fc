"""Eval-set adequacy: how precisely the val and test splits can measure. Two figures per split
and metric: the 95% bootstrap CI width of the mean score, and the paired minimum detectable
difference (MDD), the smallest difference between two systems scored on the same images that
a paired test would find with 80% power at a two-sided 5% level. A gold-vs-predicted drop and a
model comparison are paired differences, so the MDD is the figure to hold them against.

Before any model exists, per-image scores come from the human ceiling (each annotator's
caption against the others') and paired differences from two annotators of the same image;
the robustness step measures the MDD again from the models' own per-image differences."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from annotate.metrics.captions import cider_d, rouge_l
from annotate.stats.bootstrap import draws, percentile_interval
from annotate.tables.schema import TableSet
from quality.agreement.ceiling import leave_one_out


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


def paired_mdd(differences, n: int | None = None, alpha: float = 0.05, power: float = 0.8
               ) -> float:
    """Minimum detectable difference of a paired comparison on `n` images (default: as many
    as `differences`): (z_{1-alpha/2} + z_power) * sd(per-image difference) / sqrt(n)."""
    d = np.asarray(differences, np.float64)
    d = d[np.isfinite(d)]
    n = len(d) if n is None else n
    if len(d) < 2 or n < 1:
        return float("nan")
    return float((norm.ppf(1 - alpha / 2) + norm.ppf(power)) * d.std(ddof=1) / np.sqrt(n))


def human_differences(ts: TableSet) -> pd.DataFrame:
    """Per image with two or more human captions: the difference between the leave-one-out
    scores of its first two annotators (by name), a stand-in for two systems' paired
    difference before any model exists."""
    items = leave_one_out(ts.captions)
    if items.empty:
        return pd.DataFrame(columns=["image_id", "cider_d", "rouge_l"])
    items["cider_d"] = cider_d(items.hypothesis.tolist(), items.references.tolist())
    items["rouge_l"] = rouge_l(items.hypothesis.tolist(), items.references.tolist())
    first, second = (items.groupby("image_id").nth(k).set_index("image_id") for k in (0, 1))
    return (first[["cider_d", "rouge_l"]] - second[["cider_d", "rouge_l"]]).dropna() \
        .reset_index()


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
    """For each non-train split and metric: images, the metric's mean, its CI width and the
    paired MDD at that split's size (from human pairs; see the module docstring)."""
    scores = human_scores(ts) if scores is None else scores
    if column not in ts.images.columns or scores.empty:
        return {}
    differences = human_differences(ts)
    sizes = ts.images[column].value_counts()
    metrics = [c for c in scores.columns if c != "image_id"]
    out = {}
    for name, n in sizes.items():
        if name == "train":
            continue
        out[str(name)] = {"images": int(n), **{
            m: {"mean": float(scores[m].mean()),
                "ci_width": ci_width(scores[m].to_numpy(), int(n), n_boot, seed=seed),
                "paired_mdd": paired_mdd(differences[m], int(n))
                if m in differences else None}
            for m in metrics}}
    return out
