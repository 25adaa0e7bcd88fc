"""The rule baseline: a caption from the layout encoding by fixed templates, no training.

It reads exactly what the learned model reads (`annotate.formats.layout.encode_layouts`: classes and
quantised boxes, left to right) and writes

    EMPTY            -> "an empty image"
    one object       -> "a red circle"
    several objects  -> "from left to right: a red circle, two blue squares and a green triangle"

(classes counted in order of first appearance). It is the floor a learned stage 2 must beat,
and since it has no weights to adapt, its own gold-vs-predicted drop is the part of the
cascade's loss that the detector causes whatever stage 2 does.
"""

from __future__ import annotations

import os

import pandas as pd

from annotate.demo.captions import listing
from annotate.formats.layout import DEFAULT_BINS, EMPTY, decode_layout, encode_layouts
from annotate.runtime.atomic import write_parquet
from annotate.tables.schema import coerce, model_source

SOURCE = model_source("rule-baseline")


def caption_of(layout: str) -> str:
    """The template caption of one encoded layout."""
    if layout == EMPTY or not layout.strip():
        return "an empty image"
    labels = [found.label for found in decode_layout(layout)]
    return listing(labels) if len(labels) == 1 else f"from left to right: {listing(labels)}"


def rule_captions(boxes: pd.DataFrame, images: pd.DataFrame, bins: int = DEFAULT_BINS
                  ) -> pd.DataFrame:
    """A captions table (source `model:rule-baseline`) for every image in `images`."""
    layouts = encode_layouts(boxes, images, bins)
    return coerce("captions", pd.DataFrame({
        "image_id": layouts.index.to_numpy(), "annotator": SOURCE,
        "caption": [caption_of(text) for text in layouts], "source": SOURCE}))


def rule_job(boxes: pd.DataFrame, images: pd.DataFrame, out: str | os.PathLike,
             bins: int = DEFAULT_BINS) -> pd.DataFrame:
    """The rule baseline's job: template captions of every image's layout.

    Parameters
    ----------
    boxes : pandas.DataFrame
        The layouts (gold or a detector's boxes).
    images : pandas.DataFrame
        The images to caption (an image without boxes gets "an empty image").
    out : path
        Where the captions table is written (Parquet, atomically).
    bins : int
        Coordinate bins per axis of the layout encoding (as the learned model's).

    Returns
    -------
    pandas.DataFrame
        The captions table, source `model:rule-baseline`.
    """
    captions = rule_captions(boxes, images, bins)
    write_parquet(out, captions)
    return captions
