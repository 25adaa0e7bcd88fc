"""Views of a table set that several steps share."""

from __future__ import annotations

import pandas as pd

from .schema import CONSENSUS, HUMAN, TRUTH, TableSet


def reference_boxes(ts: TableSet) -> pd.DataFrame:
    """One view of what each image contains: consensus boxes when the set has them, else the
    known truth, else each image's human boxes from its first annotator (alphabetically)."""
    boxes = ts.boxes
    for source in (CONSENSUS, TRUTH):
        if (boxes.source == source).any():
            return boxes[boxes.source == source]
    human = boxes[boxes.source == HUMAN]
    first = human.groupby("image_id").annotator.transform("min")
    return human[human.annotator == first]
