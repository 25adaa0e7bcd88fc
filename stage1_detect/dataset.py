"""Table set -> YOLO data set for training: which boxes are gold, and a fixed label map."""

from __future__ import annotations

import os
from pathlib import Path

from annotate.errors import UserError
from annotate.schema import CONSENSUS, HUMAN, TRUTH, TableSet
from annotate.yolo import to_yolo

GOLD_CHOICES = "consensus (default), truth, or an annotator's name"


def gold_source(ts: TableSet, gold: str | None = None) -> tuple[str, str | None]:
    """(source, annotator) of the gold boxes: `gold` names 'consensus', 'truth' or one human
    annotator; by default consensus, which must exist.

    All human boxes merged are not offered: three annotators' boxes of one object would teach the
    detector to fire three times; `quality consensus` is the merge that makes sense.
    """
    gold = gold or CONSENSUS
    if gold in (CONSENSUS, TRUTH):
        if not (ts.boxes.source == gold).any():
            hint = " (run `quality consensus` first)" if gold == CONSENSUS else ""
            raise UserError(f"no {gold} boxes in the set{hint}; choose gold from {GOLD_CHOICES}")
        return gold, None
    annotators = set(ts.annotations.annotator[ts.annotations.source == HUMAN])
    if gold not in annotators:
        raise UserError(f"gold {gold!r} is not an annotator of this set; choose from "
                         f"{GOLD_CHOICES} ({', '.join(sorted(annotators)[:5])}...)")
    return HUMAN, gold


def build_dataset(ts: TableSet, out: str | os.PathLike, gold: str | None = None) -> Path:
    """Write the YOLO data set (images symlinked, splits from the `split` column, class ids in
    the set's label order, so they stay fixed across runs); return its data.yaml."""
    if not ts.labels:
        raise UserError("the set has no label map; import it with --labels")
    source, annotator = gold_source(ts, gold)
    return to_yolo(ts, out, source, annotator)
