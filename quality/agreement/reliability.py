"""Inter-annotator reliability of a table set: Krippendorff's alpha for labels, boxes, captions
and object counts, per annotator and per class, with intervals and the units to review.

Units: a box cluster (see `units`) for labels and boxes; an image for captions and counts. An
annotator who completed an image but has no box in a cluster rates it *absent*; one who never saw
the image rates nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from annotate.metrics.captions import chrf_distance
from annotate.metrics.geometry import box_distance
from annotate.runtime.errors import UserError
from annotate.runtime.jsonable import records
from annotate.tables.schema import HUMAN, TableSet
from quality.agreement.alpha import Alpha, alpha
from quality.agreement.units import ABSENT, COORDS, SAME_OBJECT_IOU, Units, build_units

#: The kinds of rating alpha is computed for (each has its review list).
ALPHA_KINDS = ("labels", "boxes", "captions", "counts")


@dataclass
class Reliability:
    """Every reliability figure of one set; `to_dict()` is the JSON of `quality reliability`."""

    alphas: dict[str, Alpha]
    #: labels and boxes again with absent values left out (agreement on what was drawn).
    present_only: dict[str, Alpha]
    per_class: dict[str, Alpha]
    annotators: pd.DataFrame
    review: dict[str, list[dict]] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out: dict = {}
        for kind, result in self.alphas.items():
            out[kind] = result.to_dict()
            if kind in self.present_only:
                out[kind]["absent_excluded"] = self.present_only[kind].to_dict()
                if kind == "boxes":
                    out[kind]["absent_excluded"].update(self.box_floor())
            out[kind]["review"] = self.review.get(kind, [])
        out["per_class"] = {name: result.to_dict() for name, result in self.per_class.items()}
        out["annotators"] = records(self.annotators)
        out["settings"] = self.settings
        return out

    def box_floor(self) -> dict:
        """Present boxes were matched at IoU >= the threshold t, so their distance (1 - IoU) is
        at most about 1 - t while the expected disagreement counts unmatched pairs (near 1):
        this alpha cannot fall much below 1 - (1 - t) / D_e, and is not read on the usual
        0.667 / 0.8 scale. The floor is stated next to it."""
        present = self.present_only["boxes"]
        threshold = self.settings.get("iou_threshold", SAME_OBJECT_IOU)
        floor = (1 - (1 - threshold) / present.expected
                 if np.isfinite(present.expected) and present.expected > 0 else None)
        return {"floor": floor, "warning": (
            f"agreement on where matched boxes are: pairs were matched at IoU >= {threshold}, "
            f"so this alpha stays above about {floor:.2f}; read it against that floor, not on "
            "the 0.667 / 0.8 scale" if floor is not None else present.warning)}


def reliability(ts: TableSet, iou_threshold: float = SAME_OBJECT_IOU, n_boot: int = 1000,
                seed: int = 0, top: int = 20) -> Reliability:
    """All reliability figures of the human annotations in `ts`. A set in which no image was
    seen by two annotators has nothing to agree on: that is a `UserError`, not NaN figures."""
    human = ts.annotations[ts.annotations.source == HUMAN]
    per_image = human.groupby("image_id").annotator.nunique()
    if not (per_image >= 2).any():
        raise UserError(f"no agreement to measure: none of the {ts.images.image_id.nunique()} "
                        f"images was annotated by two or more people ({human.annotator.nunique()}"
                        " annotators, at most "
                        f"{int(per_image.max()) if len(per_image) else 0} per image)")
    units = build_units(ts, iou_threshold)
    ratings = ratings_by_kind(ts, units)
    options = {"n_boot": n_boot, "seed": seed}
    alphas = {kind: alpha(r.unit, r.value, level, coders=r.coder, **r.resampling(), **options)
              for kind, (r, level) in ratings.items()}
    present_only = {kind: alpha(p.unit, p.value, level, coders=p.coder, **p.resampling(),
                                **options)
                    for kind, (r, level) in ratings.items() if kind in ("labels", "boxes")
                    for p in [r.subset(r.present)]}
    labels = ts.labels or sorted(units.boxes.label.dropna().unique())
    per_class = {name: alpha(units.ratings.cluster, (units.ratings.label == name).to_numpy(),
                             "nominal", groups=units.ratings.image_id.to_numpy(object),
                             group_name="image", **options) for name in labels}
    return Reliability(
        alphas, present_only, per_class,
        annotator_figures(ts, units, ratings, alphas, seed),
        {kind: _review(kind, alphas[kind], units, ts, top) for kind in alphas},
        {"iou_threshold": iou_threshold, "n_boot": n_boot, "seed": seed,
         "caption_distance": "1 - symmetric chrF", "box_distance": "1 - IoU"})


@dataclass
class Ratings:
    """Long-format ratings of one kind: parallel arrays unit, coder, value, present, and the
    image of each rating when units are smaller than images (box clusters): intervals resample
    images, the independent unit."""

    unit: np.ndarray
    coder: np.ndarray
    value: np.ndarray
    present: np.ndarray
    image: np.ndarray | None = None

    def without(self, coder: str) -> Ratings:
        keep = self.coder != coder
        return Ratings(self.unit[keep], self.coder[keep], self.value[keep], self.present[keep],
                       None if self.image is None else self.image[keep])

    def subset(self, mask: np.ndarray) -> Ratings:
        return Ratings(self.unit[mask], self.coder[mask], self.value[mask], self.present[mask],
                       None if self.image is None else self.image[mask])

    def resampling(self) -> dict:
        """alpha()'s options for resampling images (when units are box clusters)."""
        return {} if self.image is None else {"groups": self.image, "group_name": "image"}


def ratings_by_kind(ts: TableSet, units: Units) -> dict[str, tuple[Ratings, object]]:
    """The ratings and alpha level (or distance) of labels, boxes, captions and counts."""
    r = units.ratings
    present = (r.box >= 0).to_numpy()
    cluster, coder = r.cluster.to_numpy(), r.annotator.to_numpy(object)
    image = r.image_id.to_numpy(object)
    coords = np.zeros((len(r), 5))  # present flag, x0, y0, x1, y1 (absent: all zero)
    coords[present, 0] = 1
    coords[present, 1:] = units.boxes[COORDS].to_numpy(np.float64)[r.box.to_numpy()[present]]
    out = {"labels": (Ratings(cluster, coder, r.label.to_numpy(object), present, image),
                      "nominal"),
           "boxes": (Ratings(cluster, coder, coords, present, image), box_distance)}
    captions = ts.captions[ts.captions.source == HUMAN]
    codes, distance = chrf_distance(captions.caption.astype(object))
    out["captions"] = (Ratings(captions.image_id.to_numpy(object),
                               captions.annotator.to_numpy(object), codes,
                               np.ones(len(codes), bool)), distance)
    n_boxes = units.boxes.groupby(["image_id", "annotator"]).size().rename("n")
    counts = units.seen.join(n_boxes, on=["image_id", "annotator"])
    out["counts"] = (Ratings(counts.image_id.to_numpy(object), counts.annotator.to_numpy(object),
                             counts.n.fillna(0).to_numpy(np.float64),
                             np.ones(len(counts), bool)), "interval")
    return out


def annotator_figures(ts: TableSet, units: Units, ratings: dict, alphas: dict[str, Alpha],
                      seed: int) -> pd.DataFrame:
    """One row per annotator: workload, agreement with the others, alpha without them, error
    rates against the consensus, median lead time."""
    seen = units.seen
    names = sorted(seen.annotator.unique())
    table = pd.DataFrame({"annotator": names}).set_index("annotator")
    table["n_images"] = seen.annotator.value_counts()
    table["n_boxes"] = units.boxes.annotator.value_counts()
    captions = ts.captions[ts.captions.source == HUMAN]
    table["n_captions"] = captions.annotator.value_counts()
    table = table.fillna(0).astype(np.int64)
    human = ts.annotations[ts.annotations.source == HUMAN]
    table["median_lead_time"] = human.groupby("annotator").lead_time.median()
    for kind in ("labels", "boxes", "captions"):  # distances in [0, 1]: 1 - mean is agreement
        result = alphas[kind]
        if not result.coders.empty:
            table[f"{kind}_agreement"] = 1 - result.coders.set_index("coder").disagreement
    for kind in ("labels", "boxes", "captions"):
        rows, level = ratings[kind]
        table[f"{kind}_alpha_without"] = [
            _alpha_without(rows, name, level, seed)
            for name in names]
    rates = rates_against_others(outcomes_against_others(units))
    return table.join(rates).reset_index()


def _alpha_without(rows: Ratings, name: str, level, seed: int) -> float:
    rest = rows.without(name)
    return alpha(rest.unit, rest.value, level, n_boot=0, seed=seed).alpha


def outcomes_against_others(units: Units) -> pd.DataFrame:
    """Each rating row of `units.ratings` (one annotator, one cluster) judged against the
    consensus of the *other* annotators (leave one out): an annotator's own vote never decides
    whether an object is real, which would flatter whoever errs most.

    Per cluster, the others keep an object when more than half of them drew it and reject it
    when fewer than half did; a tie among them, or a cluster nobody else saw, is not judged
    (with two others, a tie is one slip against one find: counting it either way charges the
    annotator for someone else's error). A kept object's label is judged against the others'
    majority label, when they have one (a tie in labels is not judged either).

    Returns
    -------
    pd.DataFrame
        Aligned with `units.ratings` (index reset): cluster, image_id, annotator, box, label
        and the booleans missed, gold (kept by the others), spurious, drew (drawn and judged),
        wrong_label, matched (label judged), plus `others_label` (the others' majority label,
        missing where not judged).
    """
    r = units.ratings.reset_index(drop=True)
    drew = (r.box >= 0).to_numpy()
    raters = r.cluster.map(r.groupby("cluster").size()).to_numpy() - 1
    members = r.cluster.map(r[drew].groupby("cluster").size()).fillna(0).to_numpy() - drew
    kept = (raters > 0) & (2 * members > raters)
    rejected = (raters > 0) & (2 * members < raters)
    gold = _label_of_others(r, drew & kept)
    named = gold.notna().to_numpy()
    return r.assign(missed=kept & ~drew, gold=kept, spurious=drew & rejected,
                    drew=drew & (kept | rejected),
                    wrong_label=named & (r.label != gold).to_numpy(), matched=named,
                    others_label=gold)


def rates_against_others(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Miss, spurious and label-error rates per annotator from `outcomes_against_others`:
    misses per object the others kept, spurious boxes per judged box, wrong labels per judged
    label."""
    grouped = outcomes[["annotator", "missed", "gold", "spurious", "drew", "wrong_label",
                        "matched"]].groupby("annotator").sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame({
            "miss_rate": grouped.missed / grouped.gold,
            "spurious_rate": grouped.spurious / grouped.drew,
            "label_error_rate": grouped.wrong_label / grouped.matched})


def _label_of_others(r: pd.DataFrame, rows: np.ndarray) -> pd.Series:
    """For each selected rating row (a drawn box), the majority label of the other annotators'
    boxes in its cluster; missing where the others tie."""
    present = r[r.box >= 0]
    votes = present.groupby(["cluster", "label"]).size().rename("votes").reset_index()
    own = r[rows][["cluster", "label"]].rename(columns={"label": "own"}).reset_index(names="row")
    pairs = own.merge(votes, on="cluster")
    pairs["votes"] -= (pairs.label == pairs.own).astype(int)
    pairs = pairs[pairs.votes > 0].sort_values(["row", "votes"], ascending=[True, False])
    top = pairs.drop_duplicates("row").set_index("row")
    second = pairs[pairs.duplicated("row")].drop_duplicates("row").set_index("row").votes
    decided = top[second.reindex(top.index).fillna(0).to_numpy() < top.votes.to_numpy()]
    return decided.label.reindex(r.index)


def _review(kind: str, result: Alpha, units: Units, ts: TableSet, top: int) -> list[dict]:
    """The `top` units with most disagreement, with every annotator's value, for review."""
    if result.units.empty or top <= 0:
        return []
    worst = result.units.sort_values(["disagreement", "unit"], ascending=[False, True]).head(top)
    worst = worst[worst.disagreement > 0]
    out = []
    if kind in ("labels", "boxes"):
        r = units.ratings[units.ratings.cluster.isin(worst.unit)]
        coords = units.boxes[COORDS].round(1).to_numpy()
        r = r.assign(value=[ABSENT if b < 0 else (lab if kind == "labels" else coords[b].tolist())
                            for b, lab in zip(r.box, r.label, strict=True)])
        values = r.groupby("cluster").apply(lambda g: dict(zip(g.annotator, g.value, strict=True)),
                                            include_groups=False)
        image = r.groupby("cluster").image_id.first()
        for row in worst.itertuples():
            out.append({"image_id": image[row.unit], "cluster": int(row.unit),
                        "disagreement": float(row.disagreement), "values": values[row.unit]})
        return out
    table = (ts.captions[ts.captions.source == HUMAN] if kind == "captions" else
             units.seen.join(units.boxes.groupby(["image_id", "annotator"]).size().rename("n"),
                             on=["image_id", "annotator"]).fillna({"n": 0}))
    column = "caption" if kind == "captions" else "n"
    table = table[table.image_id.isin(worst.unit)]
    values = table.groupby("image_id").apply(
        lambda g: dict(zip(g.annotator, g[column].astype(object), strict=True)),
        include_groups=False)
    for row in worst.itertuples():
        out.append({"image_id": row.unit, "disagreement": float(row.disagreement),
                    "values": {k: (int(v) if kind == "counts" else v)
                               for k, v in values[row.unit].items()}})
    return out
