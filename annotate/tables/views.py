"""Views of a table set that several steps share."""

from __future__ import annotations

import logging

import pandas as pd

from annotate.runtime.errors import UserError
from annotate.tables.schema import CONSENSUS, HUMAN, TRUTH, TableSet

log = logging.getLogger(__name__)
GOLD_CHOICES = "consensus (default), truth, or an annotator's name"


def gold_view(ts: TableSet, gold: str | None = None) -> tuple[str, str | None]:
    """(source, annotator) of the gold boxes: `gold` names 'consensus', 'truth' or one human
    annotator; by default consensus, which must exist, except in a set with one human
    annotator and no consensus (a COCO or YOLO file), whose annotator is its own gold. The one
    definition of "gold" for training and evaluation.

    All human boxes merged are not offered: three annotators' boxes of one object would teach a
    detector to fire three times; `quality consensus` is the merge that makes sense.
    """
    if gold is None and not (ts.boxes.source == CONSENSUS).any():
        annotators = ts.annotations.annotator[ts.annotations.source == HUMAN].unique()
        if len(annotators) == 1:  # one annotator (a COCO or YOLO file): it is the gold
            return HUMAN, str(annotators[0])
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


def gold_name(ts: TableSet, gold: str | None = None) -> str:
    """What `gold_view` chose, in words: 'consensus', 'truth' or the annotator's name."""
    source, annotator = gold_view(ts, gold)
    return annotator if annotator is not None else source


def gold_boxes(ts: TableSet, gold: str | None = None) -> pd.DataFrame:
    """The gold boxes `gold_view` names."""
    source, annotator = gold_view(ts, gold)
    boxes = ts.boxes[ts.boxes.source == source]
    return boxes if annotator is None else boxes[boxes.annotator == annotator]


def reference_boxes(ts: TableSet) -> pd.DataFrame:
    """What each image contains, for stratifying splits and comparing layouts (never for
    training or evaluation, which use `gold_boxes`): consensus, else truth, else, as a logged
    fallback, each image's boxes from its alphabetically first annotator."""
    for source in (CONSENSUS, TRUTH):
        if (ts.boxes.source == source).any():
            return ts.boxes[ts.boxes.source == source]
    log.warning("no consensus or truth boxes: each image's first annotator (alphabetically) "
                "stands in for stratification and layout checks; run `quality consensus`")
    human = ts.boxes[ts.boxes.source == HUMAN]
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


def annotator_table(ts: TableSet) -> pd.DataFrame:
    """Per annotator: images completed, median lead time (seconds), human boxes and captions.

    Parameters
    ----------
    ts : TableSet
        Any set.

    Returns
    -------
    pandas.DataFrame
        Indexed by annotator (every one with an `annotations` row); counts are 0, not
        missing, for an annotator who drew nothing.
    """
    per = ts.annotations.groupby("annotator").agg(images=("image_id", "size"),
                                                  median_lead_time_s=("lead_time", "median"))
    human_boxes = ts.boxes[ts.boxes.source == HUMAN]
    human_captions = ts.captions[ts.captions.source == HUMAN]
    per["boxes"] = human_boxes.groupby("annotator").size().reindex(per.index, fill_value=0)
    per["captions"] = human_captions.groupby("annotator").size().reindex(per.index,
                                                                          fill_value=0)
    return per
