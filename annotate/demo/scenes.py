"""Synthetic "shapes" scenes: coloured shapes on a noisy background, with their exact layout.

Some images are crops of one larger source scene and share its `group_id` (the leak a naive split
lets through); a few are byte-identical copies filed under another group (the leak only an audit
finds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

#: The demo label map: colour + shape, chosen so that confusions share a colour or a shape.
CLASSES: tuple[str, ...] = ("red circle", "yellow circle", "blue square", "green square",
                            "green triangle")
COLOURS = {"red": (214, 48, 49), "yellow": (236, 190, 30), "blue": (40, 90, 210),
           "green": (46, 160, 67)}
SIZES = ((160, 120), (192, 144), (160, 160), (224, 168))


@dataclass(frozen=True)
class Obj:
    """One object of a layout: class name and its tight box in absolute pixels."""

    label: str
    x0: float
    y0: float
    x1: float
    y1: float

    def shifted(self, dx: float, dy: float) -> Obj:
        return Obj(self.label, self.x0 - dx, self.y0 - dy, self.x1 - dx, self.y1 - dy)


@dataclass
class Scene:
    """A rendered image with its true layout and the group (source scene) it came from."""

    image: Image.Image
    objects: list[Obj]
    group_id: str


def _place_objects(rng: np.random.Generator, width: int, height: int, n: int) -> list[Obj]:
    """Place up to `n` non-overlapping objects (with a small gap) inside width x height."""
    placed: list[Obj] = []
    for _ in range(n * 30):
        if len(placed) == n:
            break
        size = float(rng.integers(20, 44))
        w = size * float(rng.uniform(0.85, 1.15))
        x0 = float(rng.uniform(2, width - w - 2))
        y0 = float(rng.uniform(2, height - size - 2))
        cand = Obj(str(rng.choice(CLASSES)), round(x0), round(y0), round(x0 + w), round(y0 + size))
        if all(cand.x1 + 4 < o.x0 or o.x1 + 4 < cand.x0 or cand.y1 + 4 < o.y0 or o.y1 + 4 < cand.y0
               for o in placed):
            placed.append(cand)
    return placed


def _render(rng: np.random.Generator, width: int, height: int, objects: list[Obj]) -> Image.Image:
    base = rng.integers(200, 240)
    noise = rng.normal(0, 6, size=(height, width, 1)) + rng.normal(0, 2, size=(height, width, 3))
    pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    draw = ImageDraw.Draw(image)
    for obj in objects:
        colour_name, shape = obj.label.split()
        colour = tuple(int(np.clip(c + rng.integers(-18, 19), 0, 255))
                       for c in COLOURS[colour_name])
        # the drawn shape fills exactly [x0, x1) x [y0, y1): the gold box is tight
        box = (obj.x0, obj.y0, obj.x1 - 1, obj.y1 - 1)
        if shape == "circle":
            draw.ellipse(box, fill=colour)
        elif shape == "square":
            draw.rectangle(box, fill=colour)
        else:
            draw.polygon([(obj.x0, obj.y1 - 1), (obj.x1 - 1, obj.y1 - 1),
                          ((obj.x0 + obj.x1 - 1) / 2, obj.y0)], fill=colour)
    return image


def single_scene(rng: np.random.Generator, group_id: str) -> Scene:
    """One stand-alone image with 1-4 objects."""
    width, height = SIZES[rng.integers(len(SIZES))]
    objects: list[Obj] = []
    while not objects:
        objects = _place_objects(rng, width, height, int(rng.integers(1, 5)))
    return Scene(_render(rng, width, height, objects), objects, group_id)


def cropped_scenes(rng: np.random.Generator, group_id: str, n_crops: int) -> list[Scene]:
    """Up to `n_crops` overlapping crops of one wide source scene; every crop holds 1-4 whole
    objects (no object is cut by a crop border), and all share `group_id`."""
    width, height = SIZES[rng.integers(len(SIZES))]
    src_w = int(width * rng.uniform(1.4, 1.9))
    objects = _place_objects(rng, src_w, height, int(rng.integers(3, 7)))
    source = _render(rng, src_w, height, objects)
    crops: list[Scene] = []
    for _ in range(n_crops * 20):
        if len(crops) == n_crops:
            break
        dx = int(rng.integers(0, src_w - width + 1))
        inside = [o for o in objects if o.x0 >= dx and o.x1 <= dx + width]
        cut = [o for o in objects if o.x0 < dx + width and o.x1 > dx and o not in inside]
        if cut or not 1 <= len(inside) <= 4:
            continue
        crops.append(Scene(source.crop((dx, 0, dx + width, height)),
                           [o.shifted(dx, 0) for o in inside], group_id))
    return crops


def generate_scenes(n: int, seed: int, crop_fraction: float = 0.3,
                    duplicate_fraction: float = 0.02) -> list[Scene]:
    """`n` scenes: about `crop_fraction` of them crops sharing a group, `duplicate_fraction`
    exact copies of earlier images under a new group, the rest stand-alone."""
    rng = np.random.default_rng(seed)
    scenes: list[Scene] = []
    n_dup = round(n * duplicate_fraction)
    group = 0
    while len(scenes) < n - n_dup:
        group += 1
        gid = f"scene_{group:05d}"
        if rng.random() < crop_fraction / 2.5:
            scenes.extend(cropped_scenes(rng, gid, int(rng.integers(2, 4))))
        else:
            scenes.append(single_scene(rng, gid))
    scenes = scenes[: n - n_dup]
    for i in rng.choice(len(scenes), size=min(n_dup, len(scenes)), replace=False):
        group += 1
        src = scenes[i]
        scenes.append(Scene(src.image.copy(), list(src.objects), f"scene_{group:05d}"))
    return scenes
