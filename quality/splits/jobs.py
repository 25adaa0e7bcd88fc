"""The split and audit jobs: `quality split | audit`, the pipeline's steps of the same names and
the test fixtures call these; nothing else writes a split set, `split_report.json` or
`audit.json`."""

from __future__ import annotations

import os
from pathlib import Path

from annotate.runtime.atomic import write_json, write_text
from annotate.runtime.errors import UserError
from annotate.runtime.jsonable import records
from annotate.tables import store
from annotate.tables.schema import TableSet
from quality.splits.adequacy import adequacy
from quality.splits.audit import (
    DEFAULT_MIN_CORRELATION,
    DEFAULT_PHASH_DISTANCE,
    FINDING_KINDS,
    IMAGE_KINDS,
    Audit,
    audit,
    repair,
)
from quality.splits.leakage import identifier_leaks, input_leaks
from quality.splits.partition import fold_set, split_report, split_set

SPLIT_REPORT = "split_report.json"
REPAIR_MOVES = "repair_moves.csv"
#: Default shares of the images in validation and test (`quality split`).
VAL, TEST = 0.1, 0.1


def split_job(ts: TableSet, out: str | os.PathLike, *, val: float = VAL, test: float = TEST,
              folds: int | None = None, seed: int = 0, n_boot: int = 1000) -> dict:
    """A group-aware, class-stratified train/val/test split (or K folds) of a set.

    Parameters
    ----------
    ts : TableSet
        The set to split; images of one `group_id` always land in one part.
    out : path
        Folder for the set with its `split` (or `fold`) column and `split_report.json`.
    val, test : float
        Shares of the images in validation and test (the rest is train).
    folds : int, optional
        K folds (column `fold`) instead of a train/val/test split.
    seed : int
        Seed of the assignment: the same seed and set give the same split.
    n_boot : int
        Bootstrap resamples for the adequacy figures (how precisely val and test measure).

    Returns
    -------
    dict
        What `split_report.json` holds: sizes per part, class shares, the largest class-share
        gap, the size error, the settings and (for a split) the adequacy of val and test.
    """
    if folds:
        result, column, asked = fold_set(ts, folds, seed), "fold", None
    else:
        result, column = split_set(ts, val, test, seed), "split"
        asked = {"train": 1 - val - test, "val": val, "test": test}
    report = split_report(result, column, asked)
    summary = {**report.to_dict(), "settings": {"val": val, "test": test, "folds": folds,
                                                "seed": seed}}
    if column == "split":
        summary["adequacy"] = adequacy(result, n_boot=n_boot, seed=seed)
    folder = store.save(result, out)
    write_json(folder / SPLIT_REPORT, summary)
    return summary


def audit_job(ts: TableSet, json_path: str | os.PathLike | None = None, *,
              phash_distance: int = DEFAULT_PHASH_DISTANCE,
              min_correlation: float = DEFAULT_MIN_CORRELATION, check_images: bool = True,
              repair_out: str | os.PathLike | None = None,
              repair_kinds: tuple[str, ...] = IMAGE_KINDS, progress: bool = False
              ) -> tuple[dict, Audit]:
    """Leakage audit of a split set, and optionally its repair.

    Parameters
    ----------
    ts : TableSet
        A set with a `split` column.
    json_path : path, optional
        Where `audit.json` is written.
    phash_distance : int
        Near duplicates: at most this many of the 64 perceptual-hash bits differ ...
    min_correlation : float
        ... and the thumbnails correlate at least this much.
    check_images : bool
        Read the image files (exact and near duplicates); False checks captions and layouts
        only.
    repair_out : path, optional
        Folder for the repaired set (duplicate clusters merged into groups, moved whole) and
        `repair_moves.csv`.
    repair_kinds : tuple of str
        Which findings the repair acts on (`quality.splits.audit.FINDING_KINDS`).
    progress : bool
        Show a progress bar while hashing images.

    Returns
    -------
    figures : dict
        What `audit.json` holds: findings, counts per kind, input leaks (caption text or
        annotator names in the stage-2 input), identifier leaks (path tokens that predict a
        class) and the repair's summary.
    found : Audit
        The findings as tables.
    """
    found = audit(ts, phash_distance, min_correlation, check_images=check_images,
                  progress=progress)
    inputs, identifiers = input_leaks(ts), identifier_leaks(ts)
    report = {**found.to_dict(),
              "counts": {**found.counts(), "input_leaks": len(inputs),
                         "identifier_leaks": len(identifiers)},
              "input_leaks": records(inputs), "identifier_leaks": records(identifiers)}
    if repair_out is not None:
        unknown = set(repair_kinds) - set(FINDING_KINDS)
        if unknown:
            raise UserError(f"unknown repair kinds {sorted(unknown)}: use {FINDING_KINDS} or all")
        repaired, moves = repair(ts, found, tuple(repair_kinds))
        folder = store.save(repaired, repair_out)
        write_text(folder / REPAIR_MOVES, moves.to_csv(index=False))
        report["repair"] = {"moved": len(moves), "out": str(Path(repair_out))}
    if json_path is not None:
        write_json(json_path, report)
    return report, found
