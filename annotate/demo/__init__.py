"""Deterministic demo data: "shapes" images annotated by a simulated team in Label Studio.

`generate` writes what a real team would hand over (images + a Label Studio snapshot export with
every annotator named + the labeling config) and, beside it, the truth a real team never has
(`truth/`: the exact layouts and three reference captions per image, image paths relative to
`out`) for checking our estimates.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from annotate.demo.annotators import TEAM, Profile, perceive, write_caption
from annotate.demo.captions import reference_captions
from annotate.demo.scenes import CLASSES, Obj, generate_scenes
from annotate.formats.images import sha256
from annotate.formats.ls_export import CAPTION, IMAGE, LABEL, labeling_config
from annotate.runtime.atomic import write_json, write_text
from annotate.tables.schema import TRUTH, TableSet
from annotate.tables.store import save

__all__ = ["CLASSES", "TEAM", "generate"]

START = datetime(2026, 10, 1, 9, 0, tzinfo=timezone.utc)
EXPORT = "export.json"


def _region_id(rng: np.random.Generator) -> str:
    alphabet = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"))
    return "".join(rng.choice(alphabet, size=10))


def _result(objects: list[Obj], caption: str | None, width: int, height: int,
            rng: np.random.Generator) -> list[dict]:
    out: list[dict] = [{
        "id": _region_id(rng), "from_name": LABEL, "to_name": IMAGE, "type": "rectanglelabels",
        "original_width": width, "original_height": height, "image_rotation": 0,
        "value": {"x": o.x0 / width * 100, "y": o.y0 / height * 100,
                  "width": (o.x1 - o.x0) / width * 100, "height": (o.y1 - o.y0) / height * 100,
                  "rotation": 0, "rectanglelabels": [o.label]},
        "origin": "manual"} for o in objects]
    if caption:
        out.append({"id": _region_id(rng), "from_name": CAPTION, "to_name": IMAGE,
                    "type": "textarea", "value": {"text": [caption]}, "origin": "manual"})
    return out


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="microseconds").replace("+00:00", "Z")


def generate(n: int, out: str | os.PathLike, seed: int = 0, annotators_per_task: int = 3,
             team: tuple[Profile, ...] = TEAM) -> Path:
    """Write `n` demo images, `export.json`, `label_config.xml` and `truth/` into `out`.

    Each task is annotated by `annotators_per_task` members of `team` drawn at random (so every
    annotator misses some images: missing data, not disagreement). Same seed, same bytes.
    """
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + 1)
    scenes = generate_scenes(n, seed)
    users = {p.email: {"id": i + 2, "email": p.email, "first_name": p.email.split("@")[0].title(),
                       "last_name": ""} for i, p in enumerate(team)}
    clock = {p.email: START for p in team}
    tasks, truth_images, truth_boxes, truth_caps = [], [], [], []
    ann_id = 0
    for task_id, scene in enumerate(tqdm(scenes, desc="demo", unit="img", disable=n < 500 or None,
                                         leave=False), start=1):
        width, height = scene.image.size
        name = f"images/img_{task_id:05d}.jpg"
        scene.image.save(out / name, quality=92)
        annotations = []
        for k in sorted(rng.choice(len(team), size=min(annotators_per_task, len(team)),
                                   replace=False)):
            p = team[int(k)]
            ann_id += 1
            lead = float(rng.lognormal(np.log(p.lead_time_s * (1 + 0.15 * len(scene.objects))),
                                       0.4))
            clock[p.email] += timedelta(seconds=lead + float(rng.uniform(1, 20)))
            skipped = bool(rng.random() < p.skip)
            drawn = [] if skipped else perceive(scene.objects, width, height, p, rng)
            caption = None if skipped else write_caption(drawn, width, height, p, rng)
            annotations.append({
                "id": ann_id, "completed_by": users[p.email],
                "result": _result(drawn, caption, width, height, rng),
                "was_cancelled": skipped, "ground_truth": False,
                "created_at": _iso(clock[p.email]), "updated_at": _iso(clock[p.email]),
                "draft_created_at": None, "lead_time": round(lead, 3), "prediction": {},
                "result_count": 0, "task": task_id, "project": 1})
        tasks.append({
            "id": task_id, "annotations": annotations, "drafts": [], "predictions": [],
            "data": {"image": f"/data/local-files/?d={name}", "group_id": scene.group_id},
            "meta": {}, "created_at": _iso(START), "updated_at": _iso(START),
            "inner_id": task_id, "total_annotations": sum(not a["was_cancelled"]
                                                          for a in annotations),
            "cancelled_annotations": sum(a["was_cancelled"] for a in annotations),
            "total_predictions": 0, "project": 1})
        image_id = str(task_id)
        truth_images.append({"image_id": image_id, "path": name,
                             "width": width, "height": height, "group_id": scene.group_id,
                             "sha256": sha256(out / name)})
        truth_boxes += [{"image_id": image_id, "annotator": TRUTH, "object_id": str(i),
                         "label": o.label, "x0": o.x0, "y0": o.y0, "x1": o.x1, "y1": o.y1,
                         "source": TRUTH} for i, o in enumerate(scene.objects)]
        truth_caps += [{"image_id": image_id, "annotator": TRUTH, "caption": c, "source": TRUTH}
                       for c in reference_captions(scene.objects, width, height, rng)]
    write_text(out / "label_config.xml", labeling_config(list(CLASSES)))
    write_json(out / EXPORT, tasks, indent=None)
    save(TableSet(images=truth_images, boxes=truth_boxes, captions=truth_caps,
                  labels=list(CLASSES), meta={"source": "annotate demo", "seed": seed, "n": n}),
         out / "truth")
    return out / EXPORT
