"""Sentences about how a layout's objects are arranged, in several phrasings.

Objects of one class are counted ("two blue squares"); relations are read from box centres, so a
caption is true of its layout and changes when the layout does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from annotate.demo.scenes import Obj

NUMBERS = {1: "a", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}


def noun_phrase(label: str, count: int = 1) -> str:
    """'a red circle', 'two blue squares'."""
    return f"{NUMBERS.get(count, str(count))} {label}{'s' if count > 1 else ''}"


def listing(labels: Sequence[str]) -> str:
    """Classes in the given order, identical ones merged and counted at their first place:
    'a red circle and two blue squares'."""
    counts = Counter(labels)
    parts = [noun_phrase(label, counts[label]) for label in dict.fromkeys(labels)]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _listing(objects: Sequence[Obj]) -> str:
    return listing([o.label for o in objects])


def _centre(o: Obj) -> tuple[float, float]:
    return (o.x0 + o.x1) / 2, (o.y0 + o.y1) / 2


def _region(o: Obj, width: int, height: int) -> str:
    cx, cy = _centre(o)
    col = "left" if cx < width / 3 else "right" if cx > 2 * width / 3 else ""
    row = "top" if cy < height / 3 else "bottom" if cy > 2 * height / 3 else ""
    return f"{row} {col}".strip() or "centre"


def phrasings(objects: Sequence[Obj], width: int, height: int) -> list[str]:
    """Every phrasing this module knows for the layout, most natural first (at least three)."""
    if not objects:
        return ["an empty background", "nothing but a plain background", "no shapes at all"]
    if len(objects) == 1:
        o = objects[0]
        where = _region(o, width, height)
        at = "in the centre" if where == "centre" else f"in the {where}"
        return [f"{noun_phrase(o.label)} {at}", f"a single {o.label} {at} of the image",
                f"one {o.label}, {where}"]
    by_x = sorted(objects, key=lambda o: _centre(o)[0])
    by_y = sorted(objects, key=lambda o: _centre(o)[1])
    xs = [_centre(o)[0] for o in objects]
    ys = [_centre(o)[1] for o in objects]
    horizontal = (max(xs) - min(xs)) >= (max(ys) - min(ys))
    left, right = _listing(by_x[:1]), _listing(by_x[1:])
    top, bottom = _listing(by_y[:1]), _listing(by_y[1:])
    lead = [f"{left} to the left of {right}", f"{_listing(by_x[-1:])} to the right of "
            f"{_listing(by_x[:-1])}", f"from left to right: {_listing(by_x)}"]
    other = [f"{top} above {bottom}", f"{_listing(by_y[-1:])} below {_listing(by_y[:-1])}",
             f"from top to bottom: {_listing(by_y)}"]
    return lead + other if horizontal else other + lead


def reference_captions(objects: Sequence[Obj], width: int, height: int,
                       rng: np.random.Generator, k: int = 3) -> list[str]:
    """`k` distinct phrasings of the layout: the most natural one plus random others."""
    options = phrasings(objects, width, height)
    rest = rng.permutation(len(options) - 1)[: k - 1] + 1
    return [options[0], *(options[int(i)] for i in rest)]
