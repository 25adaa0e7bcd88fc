"""What a gallery page shows, independent of HTML: views made of cards, cards made of panels
(one picture each) with boxes and text. Each view module builds these; `pages` renders them."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass, field

import pandas as pd

#: Box kinds and their colours: one legend for every page (stroke colour of the SVG boxes).
COLOURS = {
    # annotators against each other (disagreement and annotator pages)
    "matched": "#2ca02c",  # everyone who saw the image drew it, with one label
    "only": "#ff7f0e",  # drawn by only some of the annotators who saw the image
    "label_conflict": "#9467bd",  # everyone drew it, with different labels
    "consensus": "#111111",  # the consensus box (dashed)
    "missed_by_annotator": "#d62728",  # an object the others kept that this annotator missed
    "spurious_by_annotator": "#d62728",  # a box the others rejected
    "wrong_label_by_annotator": "#9467bd",  # a label the others' majority disagrees with
    # a detector against gold (stage-1 and stage-2 pages)
    "gold": "#2ca02c",  # a gold box (dashed)
    "correct": "#1f77b4",  # a prediction matching a gold box with its label
    "mislocated": "#ff7f0e",  # matched, right label, but overlapping its gold box little
    "wrong_label": "#9467bd",  # matched a gold box with another label
    "spurious": "#d62728",  # a prediction matching no gold box
    "missed": "#d62728",  # a gold box no prediction matched (dashed)
    "reference": "#1f77b4",  # the boxes a layout comparison uses (leakage pages)
}
#: Kinds drawn dashed: what is not an annotator's or a model's own box.
DASHED = frozenset({"consensus", "gold", "missed", "missed_by_annotator"})
LEGEND = {
    "matched": "every annotator drew it, same label",
    "only": "only the annotators named drew it",
    "label_conflict": "every annotator drew it, labels differ",
    "consensus": "consensus box",
    "missed_by_annotator": "missed: the others kept it",
    "spurious_by_annotator": "spurious: the others rejected it",
    "wrong_label_by_annotator": "label the others' majority disagrees with",
    "gold": "gold box",
    "correct": "prediction: right object, right label",
    "mislocated": "prediction: right label, low overlap",
    "wrong_label": "prediction: wrong label",
    "spurious": "prediction: nothing there",
    "missed": "gold box the detector missed",
    "reference": "reference box",
}


@dataclass(frozen=True)
class Box:
    """One box on a picture, in the image's displayed pixel frame."""

    x0: float
    y0: float
    x1: float
    y1: float
    kind: str  # a key of COLOURS
    text: str  # drawn at the box's top-left corner
    title: str = ""  # shown on hover
    focus: bool = False  # one of the objects the view is about (drawn thicker)
    who: str = ""  # the annotators it belongs to, comma-separated (data attribute)


@dataclass
class Panel:
    """One picture with its boxes and a heading."""

    image_id: str
    heading: str
    boxes: list[Box] = field(default_factory=list)


@dataclass
class Card:
    """One item of a view: an image (or a pair of images) with what to read beside it."""

    title: str
    panels: list[Panel]
    #: (name, value) figures shown under the title
    figures: list[tuple[str, object]] = field(default_factory=list)
    #: plain-text lines (reasons, notes)
    notes: list[str] = field(default_factory=list)
    #: a small table beside the picture: header and rows of plain text
    table: tuple[list[str], list[list[str]]] | None = None
    #: the (image) id the card is about, for anchors and tests
    key: str = ""


@dataclass
class View:
    """A list of cards under one title: paged on its own pages."""

    key: str  # "disagreement/presence_tie": the folder and the file stem of its pages
    title: str
    intro: str
    #: what `items` counts ("flags", "images", "objects", "pairs") and how many
    unit: str
    items: int
    cards: list[Card]
    #: figures for the page header: (name, value)
    figures: list[tuple[str, object]] = field(default_factory=list)
    legend: tuple[str, ...] = ()
    #: the name the report looks the view up by in gallery.json's `links` ("flag:label_tie",
    #: "annotator:NAME", "detector:NAME:cell:ROW|COLUMN", "bucket:NAME", "leakage:KIND")
    link: str = ""


def slug(name: object) -> str:
    """A file-name-safe, collision-free form of a label, annotator or bucket name.

    >>> slug("bob@example.com"), slug("Red circle")
    ('bob-example-com-a460e3', 'red-circle-d6718a')
    """
    text = str(name)
    safe = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "x"
    return f"{safe}-{hashlib.sha1(text.encode()).hexdigest()[:6]}"


def grouped(keys, *columns) -> dict:
    """key -> list of rows (lists of the columns' values as Python objects), in row order:
    a group-by that builds pages without a pandas call per group."""
    out: dict = defaultdict(list)
    values = [plain(c) for c in columns]
    for key, *row in zip(plain(keys), *values, strict=True):
        out[key].append(row)
    return out


def plain(column) -> list:
    """A column's values as Python objects (missing -> None), for fast row loops."""
    return pd.Series(column).astype(object).where(pd.Series(column).notna(), None).tolist()
