"""Layout encoding: one image's boxes -> the stage-2 input text, and back.

Objects are written left to right (by box centre x, then centre y, then label), each as its class
name and its corners normalised by the image size and quantised into `bins` steps:

    red circle x2 y5 x4 y7 ; blue square x9 y1 x12 y4

with bins=16 on a 100x100 image. An image without objects encodes as `EMPTY`. Coarse bins make
stage 2 depend less on exact coordinates that stage 1 cannot deliver.

**Confidence** (`score_bins` > 0): each object also carries its detection score, quantised into
`score_bins` equal buckets of [0, 1] and written last:

    red circle x2 y5 x4 y7 s4 ; blue square x9 y1 x12 y4 s0

An object with no score (a human or gold box, `score` NaN or no `score` column) is certain and
gets the top bucket. With `score_bins` 0 (the default, and every model trained before scores
existed) scores are not written, so such a model reads a scored layout as it always did.

Only the class, the box and (when asked) the score reach the input: no caption, annotator,
source or file name (see quality.splits.leakage).
"""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np
import pandas as pd

from annotate.runtime.errors import UserError

EMPTY = "<empty>"
SEPARATOR = " ; "
DEFAULT_BINS = 16
#: Score buckets of the layouts with confidence (`score_bins`): 0-0.2, ..., 0.8-1.
SCORE_BINS = 5

_OBJECT = re.compile(r"^(?P<label>.+?) x(?P<x0>\d+) y(?P<y0>\d+) x(?P<x1>\d+) y(?P<y1>\d+)"
                     r"(?: s(?P<score>\d+))?$")


class LayoutObject(NamedTuple):
    """One object of an encoded layout: its class, its corner bins and its score bucket (None
    when the layout carries no scores)."""

    label: str
    x0: int
    y0: int
    x1: int
    y1: int
    score: int | None


def quantise(values: np.ndarray, size: np.ndarray | float, bins: int) -> np.ndarray:
    """Coordinates -> bin index 0..bins-1 of their position along `size` pixels."""
    return np.clip(np.floor(values / size * bins), 0, bins - 1).astype(np.int64)


def score_tokens(score_bins: int) -> list[str]:
    """The score words of a layout with `score_bins` buckets (`s0` .. `s<score_bins - 1>`)."""
    return [f"s{k}" for k in range(score_bins)]


def encode_layouts(boxes: pd.DataFrame, images: pd.DataFrame, bins: int = DEFAULT_BINS,
                   score_bins: int = 0) -> pd.Series:
    """The encoded layout of every image in `images` (indexed by image_id), from `boxes`.

    Parameters
    ----------
    boxes : pandas.DataFrame
        One view (one source/annotator per image): image_id, label, x0, y0, x1, y1 and, for
        detections, `score`. Images with no boxes get `EMPTY`.
    images : pandas.DataFrame
        image_id, width and height of every image to encode.
    bins : int
        Coordinate bins per axis.
    score_bins : int
        Score buckets written after each box (0: no scores; see the module docstring).

    Returns
    -------
    pandas.Series
        The layout text per image_id, in the order of `images`.

    Examples
    --------
    >>> images = pd.DataFrame({"image_id": ["a"], "width": [100], "height": [100]})
    >>> boxes = pd.DataFrame({"image_id": ["a", "a"], "label": ["blue square", "red circle"],
    ...                       "x0": [60, 10], "y0": [5, 30], "x1": [80, 25], "y1": [25, 45],
    ...                       "score": [0.12, float("nan")]})
    >>> encode_layouts(boxes, images)["a"]
    'red circle x1 y4 x4 y7 ; blue square x9 y0 x12 y4'
    >>> encode_layouts(boxes, images, score_bins=5)["a"]
    'red circle x1 y4 x4 y7 s4 ; blue square x9 y0 x12 y4 s0'
    """
    if bins < 1:
        raise UserError(f"bins must be >= 1, got {bins}")
    if score_bins < 0:
        raise UserError(f"score_bins must be >= 0, got {score_bins}")
    size = images.drop_duplicates("image_id").set_index("image_id")[["width", "height"]]
    known = boxes[boxes.image_id.isin(size.index)]
    width = known.image_id.map(size.width).to_numpy(np.float64)
    height = known.image_id.map(size.height).to_numpy(np.float64)
    q = {c: quantise(known[c].to_numpy(np.float64), width if c[0] == "x" else height, bins)
         for c in ("x0", "y0", "x1", "y1")}
    if score_bins:  # a box without a score (gold, human) is certain
        scores = (known.score.to_numpy(np.float64) if "score" in known.columns
                  else np.full(len(known), np.nan))
        q["s"] = quantise(np.nan_to_num(scores, nan=1.0), 1.0, score_bins)
    frame = pd.DataFrame({
        "image_id": known.image_id.to_numpy(), "label": known.label.astype(str).to_numpy(),
        "cx": known.x0.to_numpy() + known.x1.to_numpy(), "cy": known.y0.to_numpy()
        + known.y1.to_numpy(), **q})
    frame = frame.sort_values(["image_id", "cx", "cy", "label", "x0", "y0"], kind="stable")
    frame["text"] = (frame.label + " x" + frame.x0.astype(str) + " y" + frame.y0.astype(str)
                     + " x" + frame.x1.astype(str) + " y" + frame.y1.astype(str))
    if score_bins:
        frame["text"] += " s" + frame.s.astype(str)
    texts = frame.groupby("image_id", sort=False).text.agg(SEPARATOR.join)
    return texts.reindex(pd.Index(images.image_id.unique(), name="image_id")).fillna(EMPTY)


def decode_layout(text: str) -> list[LayoutObject]:
    """The objects of one encoded layout, in their written order (`EMPTY` -> []).

    >>> decode_layout("red circle x1 y4 x4 y7 s4 ; blue square x9 y0 x12 y4 s0")[1]
    LayoutObject(label='blue square', x0=9, y0=0, x1=12, y1=4, score=0)
    """
    if text.strip() in ("", EMPTY):
        return []
    objects = []
    for part in text.split(SEPARATOR):
        match = _OBJECT.match(part.strip())
        if match is None:
            raise UserError(f"not an encoded object: {part!r} (expected "
                            "'<class> x<n> y<n> x<n> y<n>' with an optional ' s<n>')")
        found = match.groupdict()
        objects.append(LayoutObject(found["label"], *(int(found[c]) for c in
                                                      ("x0", "y0", "x1", "y1")),
                                    None if found["score"] is None else int(found["score"])))
    return objects
