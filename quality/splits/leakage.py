"""Target leakage: features in the stage-2 input, or in image identifiers, that carry the answer.

- The encoded input of each image must hold no caption text (a word 3-gram of one of its
  captions that is not part of a class name) and no annotator or source value.
- Image ids and file paths must not predict the labels: a path token (word of the file name or
  folders) shared by enough images, almost all of which contain one class, is reported.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from annotate.formats.layout import encode_layouts
from annotate.tables.schema import HUMAN, TableSet
from annotate.tables.views import reference_boxes

NGRAM = 3
MIN_SUPPORT = 5
MIN_PRECISION = 0.95
MIN_LIFT = 1.5
_WORD = re.compile(r"[a-z]+")


def input_leaks(ts: TableSet, encoded: pd.Series | None = None) -> pd.DataFrame:
    """Images whose encoded stage-2 input holds caption text or an annotator/source value:
    image_id, kind (caption_text / annotator / source), evidence."""
    encoded = encode_layouts(reference_boxes(ts), ts.images) if encoded is None else encoded
    class_words = {w for name in ts.labels for w in _WORD.findall(str(name).lower())}
    found = []
    captions = ts.captions[ts.captions.source == HUMAN]
    text_of = encoded.str.lower()
    for image_id, caption in zip(captions.image_id, captions.caption, strict=True):
        words = _WORD.findall(str(caption).lower())
        have = text_of.get(image_id, "")
        for k in range(len(words) - NGRAM + 1):
            gram = words[k:k + NGRAM]
            if set(gram) <= class_words:
                continue
            if re.search(r"\b" + r"\s+".join(gram) + r"\b", have):
                found.append((image_id, "caption_text", " ".join(gram)))
                break
    for column, kind in (("annotator", "annotator"), ("source", "source")):
        names = pd.concat([ts.boxes[column], ts.captions[column], ts.annotations[column]])
        for name in names.dropna().astype(str).unique():
            if len(name) < 3:
                continue
            hit = encoded.str.contains(name, regex=False)
            found += [(image_id, kind, name) for image_id in encoded.index[hit]]
    return pd.DataFrame(found, columns=["image_id", "kind", "evidence"])


def identifier_leaks(ts: TableSet, min_support: int = MIN_SUPPORT,
                     min_precision: float = MIN_PRECISION, min_lift: float = MIN_LIFT
                     ) -> pd.DataFrame:
    """Path/id tokens that predict a class: token, label, support (images with the token),
    precision (share of them containing the label), base_rate (share of all images)."""
    images = ts.images
    text = (images.image_id.astype(str) + " " + images.path.astype(str)).str.lower()
    tokens = text.str.findall(_WORD).explode().dropna()
    tokens = pd.DataFrame({"row": tokens.index, "token": tokens.to_numpy()}).drop_duplicates()
    boxes = reference_boxes(ts)
    present = boxes[["image_id", "label"]].drop_duplicates()
    row_of = pd.Series(np.arange(len(images)), index=images.image_id.to_numpy())
    present = pd.DataFrame({"row": present.image_id.map(row_of).to_numpy(),
                            "label": present.label.to_numpy()}).dropna()
    support = tokens.groupby("token").size().rename("support")
    joint = tokens.merge(present, on="row").groupby(["token", "label"]).size().rename("hits")
    table = joint.reset_index().join(support, on="token")
    table["precision"] = table.hits / table.support
    base = present.groupby("label").size() / max(len(images), 1)
    table["base_rate"] = table.label.map(base)
    # tokens on (almost) every image (folder names, "img", "jpg") carry nothing
    common = table.support >= 0.5 * len(images)
    leaky = ((table.support >= min_support) & (table.precision >= min_precision)
             & (table.precision >= min_lift * table.base_rate) & ~common)
    return table[leaky].sort_values(["precision", "support"], ascending=False)[
        ["token", "label", "support", "precision", "base_rate"]].reset_index(drop=True)
