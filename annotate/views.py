"""Views of a table set that several steps share."""

from __future__ import annotations

import pandas as pd

from .errors import UserError
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


def split_images(ts: TableSet, split: str | None) -> pd.DataFrame:
    """The images of one split (all images when `split` is None); an error when the set has
    not been split."""
    if split is None:
        return ts.images
    if "split" not in ts.images.columns:
        raise UserError("the set has no split column: run `quality split` first or drop --split")
    return ts.images[ts.images.split == split]
