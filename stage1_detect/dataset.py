"""Table set -> YOLO data set for training: which boxes are gold, and a fixed label map."""

from __future__ import annotations

import os
from pathlib import Path

from annotate.formats.yolo import to_yolo
from annotate.runtime.errors import UserError
from annotate.tables.schema import TableSet
from annotate.tables.views import gold_view


def build_dataset(ts: TableSet, out: str | os.PathLike, gold: str | None = None) -> Path:
    """Write the YOLO data set (images symlinked, splits from the `split` column, class ids in
    the set's label order, so they stay fixed across runs); return its data.yaml."""
    if not ts.labels:
        raise UserError("the set has no label map; import it with --labels")
    source, annotator = gold_view(ts, gold)
    return to_yolo(ts, out, source, annotator)
