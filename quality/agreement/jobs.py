"""The agreement job: `quality reliability`, the pipeline's reliability step and the test
fixtures call `reliability_job`; nothing else writes `reliability.json`."""

from __future__ import annotations

import os

from annotate.runtime.atomic import write_json
from annotate.tables.schema import TableSet
from quality.agreement.ceiling import human_ceiling
from quality.agreement.reliability import Reliability, reliability
from quality.agreement.units import SAME_OBJECT_IOU


def reliability_job(ts: TableSet, json_path: str | os.PathLike | None = None, *,
                    iou: float = SAME_OBJECT_IOU, n_boot: int = 1000, seed: int = 0, top: int = 20,
                    ceiling: bool = True, plot: str | os.PathLike | None = None
                    ) -> tuple[dict, Reliability]:
    """Krippendorff's alpha for labels, boxes, captions and counts, with intervals, per
    annotator and per class, the units to review and the human caption ceiling.

    Parameters
    ----------
    ts : TableSet
        A set with several annotators per image (`human` rows and their `annotations`).
    json_path : path, optional
        Where `reliability.json` is written (atomically); nothing is written when None.
    iou : float
        IoU at which two annotators' boxes are the same object (`quality.agreement.units`).
    n_boot : int
        Bootstrap resamples for every interval (images are resampled, their units together).
    seed : int
        Seed of the resampling.
    top : int
        Units with most disagreement listed per kind for review.
    ceiling : bool
        Add the human caption ceiling (each annotator's captions against the others').
    plot : path, optional
        A PNG of the alphas and each annotator's agreement.

    Returns
    -------
    figures : dict
        What was written: one entry per kind (`alpha`, `ci_low`, `ci_high`, `n_units`,
        `resampled`, `review`), `per_class`, `annotators`, `settings` and `human_ceiling`.
    result : Reliability
        The same figures as objects (for printing and further analysis).
    """
    result = reliability(ts, iou, n_boot, seed, top)
    figures = result.to_dict()
    if ceiling:
        figures["human_ceiling"] = human_ceiling(ts, n_boot, seed)
    if json_path is not None:
        write_json(json_path, figures)
    if plot is not None:
        from quality.agreement.plots import reliability_figure, save_figure  # matplotlib

        save_figure(reliability_figure(result), plot)
    return figures, result
