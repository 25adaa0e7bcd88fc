"""The data-quality jobs, one function each: compute the result and write its artifact.

`quality reliability | consensus | split | audit`, the pipeline's steps of the same names and
the test fixtures all call these; nothing else assembles these artifacts, so what a command
writes and what the report reads cannot disagree. Each returns the figures it wrote.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from annotate import store
from annotate.atomic import write_json, write_text
from annotate.errors import UserError
from annotate.schema import CONSENSUS, TableSet

from .adequacy import adequacy
from .audit import (
    DEFAULT_MIN_CORRELATION,
    DEFAULT_PHASH_DISTANCE,
    IMAGE_KINDS,
    KINDS,
    Audit,
    audit,
    repair,
)
from .ceiling import human_ceiling
from .consensus import build_consensus
from .leakage import identifier_leaks, input_leaks
from .reliability import Reliability, reliability
from .splits import fold_set, split_report, split_set
from .units import DEFAULT_IOU

SPLIT_REPORT = "split_report.json"
CONSENSUS_FLAGS = "consensus_flags.csv"
CONSENSUS_SUMMARY = "consensus.json"
REPAIR_MOVES = "repair_moves.csv"


def reliability_job(ts: TableSet, json_path: str | os.PathLike | None = None, *,
                    iou: float = DEFAULT_IOU, n_boot: int = 1000, seed: int = 0, top: int = 20,
                    ceiling: bool = True, plot: str | os.PathLike | None = None
                    ) -> tuple[dict, Reliability]:
    """Alphas with CIs, per-annotator figures, the review list and (with `ceiling`) the human
    caption ceiling; written to `json_path` (and a figure to `plot`)."""
    result = reliability(ts, iou, n_boot, seed, top)
    figures = result.to_dict()
    if ceiling:
        figures["human_ceiling"] = human_ceiling(ts, n_boot, seed)
    if json_path is not None:
        write_json(json_path, figures)
    if plot is not None:
        from .plots import reliability_figure, save_figure  # matplotlib only when asked

        save_figure(reliability_figure(result), plot)
    return figures, result


def consensus_job(ts: TableSet, out: str | os.PathLike, *, iou: float = DEFAULT_IOU,
                  tie: str = "keep") -> dict:
    """The set plus consensus boxes and captions, written to `out` with its review flags and
    `consensus.json` (counts, flags, what adjudication overturned)."""
    result = build_consensus(ts, iou_threshold=iou, tie=tie)
    folder = store.save(result.tables, out)
    write_text(folder / CONSENSUS_FLAGS, result.flags.to_csv(index=False))
    figures = {"consensus_boxes": int((result.tables.boxes.source == CONSENSUS).sum()),
               "box_clusters": len(result.clusters),
               "consensus_captions": int((result.tables.captions.source == CONSENSUS).sum()),
               "flags": {str(k): int(n) for k, n in result.flags.kind.value_counts().items()},
               "adjudication": result.adjudication, "settings": {"iou": iou, "tie": tie}}
    write_json(folder / CONSENSUS_SUMMARY, figures)
    return figures


def split_job(ts: TableSet, out: str | os.PathLike, *, val: float = 0.1, test: float = 0.1,
              folds: int | None = None, seed: int = 0, n_boot: int = 1000) -> dict:
    """A group-aware split (or K folds) written to `out`, with `split_report.json`: sizes,
    class balance and, for a split, how precisely val and test can measure (adequacy)."""
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
    """Leakage audit of a split set: duplicates and split groups across splits, input leaks
    (caption text or annotator names in the stage-2 input) and identifier leaks (path tokens
    that predict a class). With `repair_out`, the repaired set is written there too."""
    found = audit(ts, phash_distance, min_correlation, check_images=check_images,
                  progress=progress)
    inputs, identifiers = input_leaks(ts), identifier_leaks(ts)
    report = {**found.to_dict(),
              "counts": {**found.counts(), "input_leaks": len(inputs),
                         "identifier_leaks": len(identifiers)},
              "input_leaks": _records(inputs), "identifier_leaks": _records(identifiers)}
    if repair_out is not None:
        unknown = set(repair_kinds) - set(KINDS)
        if unknown:
            raise UserError(f"unknown repair kinds {sorted(unknown)}: use {KINDS} or all")
        repaired, moves = repair(ts, found, tuple(repair_kinds))
        folder = store.save(repaired, repair_out)
        write_text(folder / REPAIR_MOVES, moves.to_csv(index=False))
        report["repair"] = {"moved": len(moves), "out": str(Path(repair_out))}
    if json_path is not None:
        write_json(json_path, report)
    return report, found


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")
