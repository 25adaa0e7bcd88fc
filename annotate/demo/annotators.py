"""Simulated annotators: each sees a true layout and labels it with a realistic error profile."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from annotate.demo.captions import phrasings
from annotate.demo.scenes import CLASSES, Obj


@dataclass(frozen=True)
class Profile:
    """How an annotator errs. Rates are per object (miss, confuse) or per image (spurious, skip)."""

    email: str
    miss: float = 0.03
    spurious: float = 0.02
    confuse: float = 0.02
    jitter_px: float = 1.0
    loose: float = 0.0          # boxes grow by up to this fraction of their size
    shift_px: float = 0.0       # systematic offset of every box
    sloppy_caption: float = 0.05
    short_caption: float = 0.05
    skip: float = 0.02
    lead_time_s: float = 25.0


#: The demo team: two careful, one average, one fast, one careless annotator.
TEAM: tuple[Profile, ...] = (
    Profile("alice@example.com", miss=0.01, confuse=0.01, jitter_px=0.8, lead_time_s=34),
    Profile("bob@example.com", miss=0.03, confuse=0.02, jitter_px=1.2, loose=0.06, lead_time_s=27),
    Profile("carol@example.com", miss=0.02, confuse=0.01, jitter_px=1.0, lead_time_s=30),
    Profile("dave@example.com", miss=0.06, spurious=0.04, confuse=0.04, jitter_px=2.0, loose=0.1,
            short_caption=0.35, skip=0.04, lead_time_s=12),
    Profile("eve@example.com", miss=0.2, spurious=0.1, confuse=0.15, jitter_px=3.5, loose=0.25,
            shift_px=3.0, sloppy_caption=0.5, short_caption=0.3, skip=0.08, lead_time_s=7),
)


def _confusable(label: str) -> list[str]:
    colour, shape = label.split()
    return [c for c in CLASSES if c != label and (c.split()[0] == colour or c.split()[1] == shape)]


def perceive(objects: list[Obj], width: int, height: int, p: Profile,
             rng: np.random.Generator) -> list[Obj]:
    """The layout as this annotator draws it: misses, confusions, loose/shifted/jittered boxes,
    spurious boxes."""
    drawn: list[Obj] = []
    for o in objects:
        if rng.random() < p.miss:
            continue
        label = str(rng.choice(_confusable(o.label))) if rng.random() < p.confuse else o.label
        w, h = o.x1 - o.x0, o.y1 - o.y0
        grow = rng.uniform(0, p.loose, size=2) * (w, h) / 2
        d = rng.normal(0, p.jitter_px, size=4) + p.shift_px
        x0 = np.clip(o.x0 - grow[0] + d[0], 0, width - 2)
        y0 = np.clip(o.y0 - grow[1] + d[1], 0, height - 2)
        x1 = np.clip(o.x1 + grow[0] + d[2], x0 + 1, width)
        y1 = np.clip(o.y1 + grow[1] + d[3], y0 + 1, height)
        drawn.append(replace(o, label=label, x0=float(x0), y0=float(y0), x1=float(x1),
                             y1=float(y1)))
    if rng.random() < p.spurious:
        size = float(rng.uniform(12, 30))
        x0, y0 = rng.uniform(0, width - size), rng.uniform(0, height - size)
        drawn.append(Obj(str(rng.choice(CLASSES)), float(x0), float(y0), float(x0 + size),
                         float(y0 + size)))
    return drawn


def _typo(text: str, rng: np.random.Generator) -> str:
    if len(text) < 4:
        return text
    i = int(rng.integers(0, len(text) - 1))
    return text[:i] + text[i + 1] + text[i] + text[i + 2:]


def write_caption(perceived: list[Obj], width: int, height: int, p: Profile,
                  rng: np.random.Generator) -> str:
    """A caption of the layout as perceived; sometimes short (a bare list) or sloppy (typos, no
    articles, digits)."""
    if rng.random() < p.short_caption and perceived:
        return ", ".join(dict.fromkeys(o.label for o in perceived))
    options = phrasings(perceived, width, height)
    text = options[int(rng.integers(0, min(len(options), 3)))]
    if rng.random() < p.sloppy_caption:
        text = text.replace("a ", "", 1).replace("two", "2").replace("to the ", "")
        text = _typo(text, rng)
    return text
