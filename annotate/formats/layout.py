"""Layout encoding: one image's boxes -> the stage-2 input text.

Objects are written left to right (by box centre x, then centre y, then label), each as its class
name and its corners normalised by the image size and quantised into `bins` steps:

    red circle x2 y5 x4 y7 ; blue square x9 y1 x12 y4

with bins=16 on a 100x100 image. An image without objects encodes as `EMPTY`. Coarse bins make
stage 2 depend less on exact coordinates that stage 1 cannot deliver. Only the class and the box
reach the input: no caption, annotator, source, score or file name (see quality.splits.leakage).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from annotate.runtime.errors import UserError

EMPTY = "<empty>"
SEPARATOR = " ; "
DEFAULT_BINS = 16


def quantise(values: np.ndarray, size: np.ndarray, bins: int) -> np.ndarray:
    """Coordinates -> bin index 0..bins-1 of their position along `size` pixels."""
    return np.clip(np.floor(values / size * bins), 0, bins - 1).astype(np.int64)


def encode_layouts(boxes: pd.DataFrame, images: pd.DataFrame, bins: int = DEFAULT_BINS
                   ) -> pd.Series:
    """The encoded layout of every image in `images` (indexed by image_id), from `boxes`.

    `boxes` is one view (one source/annotator per image); images with no boxes get `EMPTY`.
    """
    if bins < 1:
        raise UserError(f"bins must be >= 1, got {bins}")
    size = images.drop_duplicates("image_id").set_index("image_id")[["width", "height"]]
    known = boxes[boxes.image_id.isin(size.index)]
    width = known.image_id.map(size.width).to_numpy(np.float64)
    height = known.image_id.map(size.height).to_numpy(np.float64)
    q = {c: quantise(known[c].to_numpy(np.float64), width if c[0] == "x" else height, bins)
         for c in ("x0", "y0", "x1", "y1")}
    frame = pd.DataFrame({
        "image_id": known.image_id.to_numpy(), "label": known.label.astype(str).to_numpy(),
        "cx": known.x0.to_numpy() + known.x1.to_numpy(), "cy": known.y0.to_numpy()
        + known.y1.to_numpy(), **q})
    frame = frame.sort_values(["image_id", "cx", "cy", "label", "x0", "y0"], kind="stable")
    frame["text"] = (frame.label + " x" + frame.x0.astype(str) + " y" + frame.y0.astype(str)
                     + " x" + frame.x1.astype(str) + " y" + frame.y1.astype(str))
    texts = frame.groupby("image_id", sort=False).text.agg(SEPARATOR.join)
    return texts.reindex(pd.Index(images.image_id.unique(), name="image_id")).fillna(EMPTY)
