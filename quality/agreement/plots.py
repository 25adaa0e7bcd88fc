"""Plots of quality results (matplotlib's Figure API: no GUI backend, no pyplot state)."""

from __future__ import annotations

import os

import numpy as np
from matplotlib.figure import Figure

from annotate.runtime.atomic import atomic_path
from quality.agreement.reliability import Reliability


def reliability_figure(result: Reliability) -> Figure:
    """Left: alpha with its interval per kind; right: each annotator's agreement with the others."""
    fig = Figure(figsize=(11, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    kinds = list(result.alphas)
    values = np.array([result.alphas[k].alpha for k in kinds])
    low = np.array([result.alphas[k].ci_low for k in kinds])
    high = np.array([result.alphas[k].ci_high for k in kinds])
    left.barh(kinds, values, xerr=np.nan_to_num([values - low, high - values]), color="#4c72b0")
    left.axvline(0.8, color="grey", ls="--", lw=1)
    left.axvline(0.667, color="grey", ls=":", lw=1)
    left.set_xlim(min(0.0, np.nanmin(low) - 0.05) if np.isfinite(low).any() else 0, 1)
    left.set_xlabel("Krippendorff's alpha (95% CI; dashed 0.8, dotted 0.667)")
    annotators = result.annotators
    columns = [c for c in ("labels_agreement", "boxes_agreement", "captions_agreement")
               if c in annotators]
    y = np.arange(len(annotators))
    height = 0.8 / max(len(columns), 1)
    for k, column in enumerate(columns):
        right.barh(y + k * height, annotators[column], height, label=column.split("_")[0])
    right.set_yticks(y + height * (len(columns) - 1) / 2, annotators.annotator)
    right.set_xlim(0, 1)
    right.set_xlabel("agreement with the other annotators (1 - mean distance)")
    right.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    return fig


def save_figure(fig: Figure, path: str | os.PathLike) -> None:
    """Write atomically: a crash leaves no half-written image. The suffix picks the format."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=os.path.splitext(str(path))[1].lstrip(".") or "png", dpi=120)
