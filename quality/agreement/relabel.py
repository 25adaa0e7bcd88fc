"""Re-labelling studies: how many images to label again for alpha's interval to be about
±target wide, which images (stratified by class, one per group), what it costs, and afterwards
whether the study reached its target.

Sample size. A 95% bootstrap interval of alpha narrows as 1/sqrt(images) (intervals resample
images, the independent unit), so a pilot interval of half-width h on n images gives
`needed = ceil(n * (h / target)^2)` images with the same number of labels each. The pilot is
the agreement already observed: images labelled by `1 + extra` people (that many drawn per
image, seeded). The plan adds a margin so that the interval is no wider than the target in a
share `assurance` (default 0.8) of studies, not merely on average (see `needed_images`).
With no image labelled twice, the pilot is simulated from a stated prior alpha: each extra
label copies the existing one with probability alpha and is otherwise a value drawn at random
from the set's own values, which gives alpha its expected value (D_o = (1 - alpha) D_e) on the
set's own classes, boxes per image and captions.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

from annotate.runtime.errors import UserError
from annotate.runtime.records import SAMPLE, record_step
from annotate.tables.schema import HUMAN, TableSet
from quality.agreement.alpha import Alpha, alpha
from quality.agreement.reliability import Ratings, ratings_by_kind
from quality.agreement.units import SAME_OBJECT_IOU, build_units, human_seen, human_subset

#: The kinds a re-labelling study can plan for (counts follow from boxes).
PLANNED_KINDS = ("labels", "boxes", "captions")
#: Rare classes get at least this many sampled images (when the frame has them).
MIN_PER_CLASS = 5
#: The share of studies whose interval should be no wider than the target.
ASSURANCE = 0.8
SAMPLE_FILE = f"{SAMPLE}.json"


@dataclass(frozen=True)
class Pilot:
    """The interval the plan scales: observed on images labelled by several people, or
    simulated from a prior alpha."""

    route: str
    images: int
    labels_per_image: int
    alpha: float
    ci_low: float
    ci_high: float

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2

    def half_width_at(self, images: int) -> float:
        """The expected half-width on `images` images labelled alike."""
        return self.half_width * math.sqrt(self.images / max(images, 1))


def needed_images(pilot: Pilot, target: float, assurance: float = ASSURANCE) -> int:
    """Images (each labelled by the pilot's number of people) for a half-width of at most
    `target` in a share `assurance` of studies (0.5: the expected half-width is `target`).

    The half-width on n images varies between studies by about 1/sqrt(2n) of itself (the
    normal-theory spread of a standard error), so n solves
    n = n_expected * (1 + z_assurance / sqrt(2n))^2, by fixed-point iteration."""
    if not target > 0:
        raise UserError(f"the target half-width must be positive, got {target}")
    if not 0 < assurance < 1:
        raise UserError(f"--assurance must be in (0, 1), got {assurance}")
    if not np.isfinite(pilot.half_width) or pilot.half_width <= 0:
        raise UserError(f"the {pilot.route} pilot on {pilot.images} images gives no interval "
                        "(too few units to resample): label more images twice, or state a prior "
                        "with --prior-alpha")
    expected = pilot.images * (pilot.half_width / target) ** 2
    z = float(norm.ppf(assurance))
    n = expected
    for _ in range(50):
        n = expected * (1 + z / math.sqrt(2 * max(n, 1))) ** 2
    return max(math.ceil(n - 1e-9), 1)


def kind_alpha(ts: TableSet, kind: str, iou: float = SAME_OBJECT_IOU, n_boot: int = 1000,
               seed: int = 0) -> Alpha:
    """Alpha of one kind (labels, boxes, captions) of the human labels, with its interval."""
    rows, level = _ratings(ts, kind, iou)
    return alpha(rows.unit, rows.value, level, coders=rows.coder, **rows.resampling(),
                 n_boot=n_boot, seed=seed)


def _ratings(ts: TableSet, kind: str, iou: float) -> tuple[Ratings, object]:
    if kind not in PLANNED_KINDS:
        raise UserError(f"kind must be one of {PLANNED_KINDS}, got {kind!r}")
    return ratings_by_kind(ts, build_units(ts, iou))[kind]


def labels_per_image(ts: TableSet) -> pd.Series:
    """How many people completed each image (images nobody labelled: 0)."""
    counts = human_seen(ts).groupby("image_id").size()
    return counts.reindex(ts.images.image_id, fill_value=0).astype(np.int64)


def _people(ts: TableSet, per_image: int, seed: int) -> pd.DataFrame:
    """`per_image` of the people who completed each image with at least that many, drawn at
    random (seeded): the design of the study, whoever happened to label first."""
    seen = human_seen(ts).sample(frac=1, random_state=seed)
    enough = seen.groupby("image_id").annotator.transform("size") >= per_image
    return seen[enough].groupby("image_id").head(per_image)


def observed_pilot(ts: TableSet, kind: str, per_image: int, iou: float = SAME_OBJECT_IOU,
                   n_boot: int = 1000, seed: int = 0) -> Pilot | None:
    """The interval on the images labelled by `per_image` people (fewer when none has that
    many: then the plan is conservative); None when no image was labelled twice."""
    most = int(labels_per_image(ts).max()) if len(ts.images) else 0
    if most < 2:
        return None
    per_image = min(per_image, most)
    pairs = _people(ts, per_image, seed)
    result = kind_alpha(human_subset(ts, pairs), kind, iou, n_boot, seed)
    return Pilot("observed", pairs.image_id.nunique(), per_image, result.alpha, result.ci_low,
                 result.ci_high)


def prior_pilot(ts: TableSet, kind: str, prior_alpha: float, per_image: int,
                iou: float = SAME_OBJECT_IOU, n_boot: int = 1000, seed: int = 0) -> Pilot:
    """The interval a study of `per_image` labels per image would give if alpha were
    `prior_alpha`, simulated on one existing label per image (see the module's docstring)."""
    if not 0 <= prior_alpha <= 1:
        raise UserError(f"--prior-alpha must be in [0, 1], got {prior_alpha}")
    pairs = _people(ts, 1, seed)
    if pairs.empty:
        raise UserError("no image has a human label: label some first, then plan a re-label")
    rows, level = _ratings(human_subset(ts, pairs), kind, iou)
    if len(rows.unit) < 2:
        raise UserError(f"only {len(rows.unit)} {kind} values to simulate from")
    rng = np.random.default_rng(seed)
    n = len(rows.unit)
    parts = [rows]
    for extra in range(1, per_image):
        copy = rng.random(n) < prior_alpha
        source = np.where(copy, np.arange(n), rng.integers(0, n, n))
        parts.append(Ratings(rows.unit, np.full(n, f"prior-{extra}", dtype=object),
                             rows.value[source], rows.present[source], rows.image))
    units = np.concatenate([p.unit for p in parts])
    coders = np.concatenate([np.asarray(p.coder, dtype=object) for p in parts])
    values = np.concatenate([p.value for p in parts])
    groups = ({} if rows.image is None else
              {"groups": np.concatenate([p.image for p in parts]), "group_name": "image"})
    result = alpha(units, values, level, coders=coders, n_boot=n_boot, seed=seed, **groups)
    return Pilot("prior", pairs.image_id.nunique(), per_image, result.alpha, result.ci_low,
                 result.ci_high)


def draw_sample(ts: TableSet, frame: pd.Index, n: int, per_group: int | None = 1,
                min_per_class: int = MIN_PER_CLASS, seed: int = 0) -> pd.DataFrame:
    """`n` images of `frame`, at most `per_group` per group (None: no limit): first the rare
    classes (those a random draw would give fewer than `min_per_class` images) up to that
    many images each, then a random draw. Columns: image_id, group_id, labels, reason."""
    images = ts.images.set_index("image_id").loc[frame]
    human = ts.boxes[(ts.boxes.source == HUMAN) & ts.boxes.image_id.isin(frame)]
    labels = human.groupby("image_id").label.agg(lambda s: sorted(set(s)))
    order = pd.DataFrame({"image_id": frame,
                          "group": images.group_id.astype(object).fillna(
                              pd.Series(frame, index=frame)).to_numpy()})
    order = order.sample(frac=1, random_state=seed).reset_index(drop=True)
    order["labels"] = order.image_id.map(labels).apply(lambda v: v if isinstance(v, list) else [])
    cap = per_group if per_group else len(order) + 1
    taken: dict[str, str] = {}
    used = pd.Series(0, index=pd.unique(order.group), dtype=np.int64)

    def take(candidates: pd.DataFrame, k: int, reason: str) -> None:
        candidates = candidates[~candidates.image_id.isin(list(taken))]
        room = cap - used.reindex(candidates.group).to_numpy()
        candidates = candidates[candidates.groupby("group").cumcount().to_numpy() < room]
        for row in candidates.head(max(k, 0)).itertuples():
            taken[row.image_id] = reason
            used[row.group] += 1

    labels_of = dict(zip(order.image_id, order.labels, strict=True))
    exploded = order.explode("labels")
    share = exploded.labels.value_counts() / max(len(order), 1)
    for name, fraction in share.sort_values().items():
        if n * fraction >= min_per_class:
            continue
        have = sum(name in labels_of[i] for i in taken)
        holders = order[order.labels.apply(lambda v, c=name: c in v)]
        take(holders, min(min_per_class, n) - have,
             f"rare class {name!r} ({len(holders)} candidate images)")
    take(order, n - len(taken), "random")
    chosen = order[order.image_id.isin(list(taken))].copy()
    chosen["reason"] = chosen.image_id.map(taken)
    chosen["group_id"] = images.group_id.reindex(chosen.image_id).to_numpy()
    return chosen[["image_id", "group_id", "labels", "reason"]].reset_index(drop=True)


def plan_relabel(ts: TableSet, target_ci: float, kind: str = "labels", extra: int = 1,
                 prior_alpha: float | None = None, per_group: int | None = 1,
                 min_per_class: int = MIN_PER_CLASS, iou: float = SAME_OBJECT_IOU,
                 n_boot: int = 1000, seed: int = 0, cost_per_hour: float | None = None,
                 assurance: float = ASSURANCE) -> dict:
    """The plan: the pilot, how many images need `1 + extra` labels, the sample (images
    labelled by fewer people so far), its expected half-width and its cost."""
    if extra < 1:
        raise UserError(f"--annotators (extra people per image) must be >= 1, got {extra}")
    per_image = 1 + extra
    pilot = (observed_pilot(ts, kind, per_image, iou, n_boot, seed)
             if prior_alpha is None else None)
    if pilot is None:
        if prior_alpha is None:
            raise UserError("no image was labelled by two people, so there is no agreement to "
                            "plan from: state one with --prior-alpha (e.g. 0.8, the usual "
                            "'reliable' line)")
        pilot = prior_pilot(ts, kind, prior_alpha, per_image, iou, n_boot, seed)
    needed = needed_images(pilot, target_ci, assurance)
    counts = labels_per_image(ts)
    done = int((counts >= per_image).sum())
    frame = pd.Index(counts[(counts >= 1) & (counts < per_image)].index)
    sample = draw_sample(ts, frame, max(needed - done, 0), per_group, min_per_class, seed)
    missing = per_image - counts.reindex(sample.image_id).to_numpy()
    seconds = ts.annotations.loc[ts.annotations.source == HUMAN, "lead_time"].median()
    hours = float(missing.sum() * seconds / 3600) if pd.notna(seconds) else None
    reached = done + len(sample)
    return {
        "kind": kind, "target_ci": target_ci, "extra_annotators": extra,
        "labels_per_image": per_image, "pilot": {**asdict(pilot), "half_width": pilot.half_width},
        "needed_images": needed, "already_labelled": done, "sample_size": len(sample),
        "annotations": int(missing.sum()),
        "expected_half_width": pilot.half_width_at(reached),
        "shortfall": max(needed - reached, 0),
        "cost": {"seconds_per_annotation": None if pd.isna(seconds) else float(seconds),
                 "hours": hours, "per_hour": cost_per_hour,
                 "total": None if hours is None or cost_per_hour is None
                 else hours * cost_per_hour},
        SAMPLE: [{**row, "labels": list(row["labels"]),
                  "group_id": None if pd.isna(row["group_id"]) else row["group_id"]}
                 for row in sample.to_dict("records")],
        "assurance": assurance,
        "settings": {"kind": kind, "target_ci": target_ci, "assurance": assurance,
                     "extra_annotators": extra,
                     "prior_alpha": prior_alpha, "per_group": per_group,
                     "min_per_class": min_per_class, "iou": iou, "n_boot": n_boot,
                     "seed": seed},
    }


def plan_job(ts: TableSet, out: str | os.PathLike, target_ci: float, *,
             tracking_uri: str | None = None, **options) -> dict:
    """Plan a re-label study and write it to `out/sample.json` (recorded in MLflow)."""
    plan = plan_relabel(ts, target_ci, **options)
    return record_step(out, SAMPLE, plan, tracking_uri)


def merge_sets(base: TableSet, added: TableSet, suffix: str = " (again)") -> tuple[TableSet, dict]:
    """`base` plus the human labels of `added` (a pulled re-label project) on the same images.
    Someone who labels an image twice is kept as two raters, the second named with `suffix`
    (a test-retest pair). Images of `added` missing from `base` are an error."""
    unknown = sorted(set(added.images.image_id) - set(base.images.image_id))
    if unknown:
        raise UserError(f"{len(unknown)} images of the re-labelled set are not in the set it "
                        f"is added to, e.g. {unknown[:3]}: add it to the set it was sampled "
                        "from")
    seen = pd.MultiIndex.from_frame(human_seen(base))

    def renamed(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame[frame.source == HUMAN].copy()
        again = pd.MultiIndex.from_frame(frame[["image_id", "annotator"]]).isin(seen)
        frame.loc[again, "annotator"] = frame.annotator[again] + suffix
        return frame

    annotations = renamed(added.annotations)
    tables = TableSet(base.images, pd.concat([base.annotations, annotations]),
                      pd.concat([base.boxes, renamed(added.boxes)]),
                      pd.concat([base.captions, renamed(added.captions)]),
                      base.labels, dict(base.meta)).validate()
    twice = int(annotations.annotator.str.endswith(suffix).sum())
    return tables, {"annotations_added": len(annotations), "images": int(
        annotations.image_id.nunique()), "labelled_twice_by_one_person": twice}


def target_check(result: Alpha, plan: dict) -> dict:
    """Whether an alpha's interval reached the plan's target half-width, and if not, how many
    images (labelled alike) the observed width suggests."""
    half = (result.ci_high - result.ci_low) / 2
    target = plan["target_ci"]
    images = int(result.resampled.get("count") or result.n_units)
    met = bool(np.isfinite(half) and half <= target)
    more = (0 if met or not np.isfinite(half) else
            max(math.ceil(images * (half / target) ** 2) - images, 1))
    return {"kind": plan["kind"], "alpha": result.alpha, "ci_low": result.ci_low,
            "ci_high": result.ci_high, "half_width": half, "target_ci": target,
            "planned_half_width": plan["expected_half_width"], "images": images, "met": met,
            "more_images": more}


def study_check(alphas: dict[str, Alpha], plan_path: str | os.PathLike,
                tracking_uri: str | None = None) -> dict:
    """`target_check` of the plan's kind, recorded as `reliability.json` in the plan's folder
    (and in MLflow)."""
    path = Path(plan_path)
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
        kind = plan["kind"]
    except (OSError, json.JSONDecodeError, KeyError) as err:
        raise UserError(f"{path}: not a plan written by quality plan-relabel "
                        f"({type(err).__name__}: {err})") from None
    check = target_check(alphas[kind], plan)
    record = {**check, "plan": str(path), "settings": {"kind": kind,
                                                        "target_ci": plan["target_ci"]}}
    return record_step(path.parent, "reliability", record, tracking_uri)


__all__ = ["PLANNED_KINDS", "Pilot", "draw_sample", "kind_alpha", "merge_sets", "needed_images",
           "observed_pilot", "plan_job", "plan_relabel", "prior_pilot", "study_check",
           "target_check"]
