"""Reliability units from boxes: the boxes of all annotators of one image, matched into objects.

Matching is greedy by IoU per annotator pair (the rule COCO evaluation uses), computed for every
image at once: in rounds, each box pair that is the best remaining match of both of its boxes
(against the other annotator) is accepted. Accepted matches are joined into clusters (connected
components); when a chain puts two boxes of one annotator in a cluster, the one with the weaker
matches leaves it as a cluster of its own. Every cluster is one unit: each annotator who completed
the image gives it a value (a box, or *absent*); annotators who never saw the image give none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from annotate.metrics.geometry import iou
from annotate.runtime.errors import UserError
from annotate.stats.graphs import components
from annotate.tables.schema import HUMAN, TableSet
from quality.agreement.alpha import pairs_within

#: Two annotators' boxes of one image are the same object at this IoU or more.
SAME_OBJECT_IOU = 0.5
ABSENT = "<absent>"
COORDS = ["x0", "y0", "x1", "y1"]


@dataclass
class Units:
    """Human boxes with their cluster, and one rating row per (cluster, annotator who saw it)."""

    #: The human boxes (index reset) with `cluster`: a dense int id over the whole set.
    boxes: pd.DataFrame
    #: cluster, image_id, annotator, box (row in `boxes`, -1 when absent), label (ABSENT when
    #: absent): one row for each annotator who completed the cluster's image.
    ratings: pd.DataFrame
    #: image_id, annotator: who completed which image (human annotations).
    seen: pd.DataFrame
    iou_threshold: float


def human_seen(ts: TableSet) -> pd.DataFrame:
    """(image_id, annotator) of every completed human annotation."""
    seen = ts.annotations.loc[ts.annotations.source == HUMAN, ["image_id", "annotator"]]
    return seen.drop_duplicates().reset_index(drop=True)


def human_subset(ts: TableSet, pairs: pd.DataFrame) -> TableSet:
    """The set's human rows of the (image_id, annotator) `pairs` only, on their images."""
    keys = pd.MultiIndex.from_frame(pairs[["image_id", "annotator"]].astype(object))

    def pick(frame: pd.DataFrame) -> pd.DataFrame:
        human = frame[frame.source == HUMAN]
        inside = pd.MultiIndex.from_frame(human[["image_id", "annotator"]].astype(object))
        return human[inside.isin(keys)]

    return TableSet(ts.images[ts.images.image_id.isin(pairs.image_id)], pick(ts.annotations),
                    pick(ts.boxes), pick(ts.captions), ts.labels, dict(ts.meta))


def build_units(ts: TableSet, iou_threshold: float = SAME_OBJECT_IOU) -> Units:
    """Cluster the human boxes of every image and list who rated each cluster."""
    if not 0 < iou_threshold <= 1:
        raise UserError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    boxes = ts.boxes[ts.boxes.source == HUMAN].reset_index(drop=True)
    seen = human_seen(ts)
    # cluster in a canonical order (by content, not by row position): greedy matching breaks
    # exact IoU ties by position, so otherwise units could depend on the order rows came in
    order = boxes.sort_values(["image_id", "annotator", *COORDS, "label", "object_id"],
                              kind="stable").index.to_numpy()
    cluster = np.empty(len(boxes), np.int64)
    cluster[order] = _cluster(boxes.iloc[order].reset_index(drop=True), iou_threshold)
    boxes["cluster"] = cluster
    return Units(boxes, _ratings(boxes, seen), seen, iou_threshold)


def _cluster(boxes: pd.DataFrame, threshold: float) -> np.ndarray:
    n = len(boxes)
    if n == 0:
        return np.zeros(0, np.int64)
    image = pd.factorize(boxes.image_id)[0]
    annotator = pd.factorize(boxes.annotator)[0]
    coords = boxes[COORDS].to_numpy(np.float64)
    left, right = pairs_within(image)
    other = annotator[left] != annotator[right]
    left, right = left[other], right[other]
    overlap = iou(coords[left], coords[right])
    good = overlap >= threshold
    left, right, overlap = left[good], right[good], overlap[good]
    a_left, a_right = _greedy_matches(left, right, overlap, annotator)
    cluster = components(n, a_left, a_right)
    strength = _strength(a_left, a_right, coords, n)
    return _split_conflicts(cluster, annotator, strength)


def _greedy_matches(left: np.ndarray, right: np.ndarray, overlap: np.ndarray,
                    annotator: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Greedy-by-IoU one-to-one matching per annotator pair, for all images at once.

    Each round accepts every candidate that is the best remaining one of both its boxes against
    the other box's annotator (a locally dominant edge: the greedy result, found in parallel),
    then drops candidates that touch an accepted (box, other annotator) side.
    """
    accepted_left, accepted_right = [], []
    order = np.lexsort((np.arange(len(overlap)), -overlap))  # best first, ties by position
    left, right = left[order], right[order]
    n_annot = int(annotator.max()) + 1 if len(annotator) else 1
    while len(left):
        side_a = left * n_annot + annotator[right]  # box `left` against right's annotator
        side_b = right * n_annot + annotator[left]
        # An edge is dominant when it is the best (first) edge at both of its sides, whether
        # its box sits on the left or the right of the other edges at that side.
        edges = np.arange(len(left))
        keys, edge = np.r_[side_a, side_b], np.r_[edges, edges]
        by_side = np.lexsort((edge, keys))
        keys, edge = keys[by_side], edge[by_side]
        first = np.r_[True, keys[1:] != keys[:-1]]
        best_keys, best_edge = keys[first], edge[first]
        take = ((best_edge[np.searchsorted(best_keys, side_a)] == edges)
                & (best_edge[np.searchsorted(best_keys, side_b)] == edges))
        accepted_left.append(left[take])
        accepted_right.append(right[take])
        used = np.union1d(side_a[take], side_b[take])
        keep = ~(np.isin(side_a, used) | np.isin(side_b, used))
        left, right = left[keep], right[keep]
    if not accepted_left:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(accepted_left), np.concatenate(accepted_right)


def _strength(left: np.ndarray, right: np.ndarray, coords: np.ndarray, n: int) -> np.ndarray:
    """Sum of IoU over each box's accepted matches: who stays when a cluster has a conflict."""
    overlap = iou(coords[left], coords[right])
    return np.bincount(np.r_[left, right], weights=np.r_[overlap, overlap], minlength=n)


def _split_conflicts(cluster: np.ndarray, annotator: np.ndarray, strength: np.ndarray
                     ) -> np.ndarray:
    """At most one box per annotator and cluster: the strongest stays, others get their own."""
    frame = pd.DataFrame({"cluster": cluster, "annotator": annotator, "strength": -strength,
                          "row": np.arange(len(cluster))})
    frame = frame.sort_values(["cluster", "annotator", "strength", "row"])
    extra = frame.duplicated(["cluster", "annotator"]).to_numpy()
    moved = frame.row.to_numpy()[extra]
    cluster = cluster.copy()
    cluster[moved] = cluster.max() + 1 + np.arange(len(moved))
    return pd.factorize(cluster)[0]


def _ratings(boxes: pd.DataFrame, seen: pd.DataFrame) -> pd.DataFrame:
    """One row per (cluster, annotator who completed its image): the box, or absent."""
    clusters = boxes.drop_duplicates("cluster")[["cluster", "image_id"]]
    raters = clusters.merge(seen, on="image_id")
    members = pd.DataFrame({"cluster": boxes.cluster.to_numpy(),
                            "annotator": boxes.annotator.to_numpy(),
                            "box": np.arange(len(boxes)), "label": boxes.label.to_numpy()})
    ratings = raters.merge(members, on=["cluster", "annotator"], how="left")
    ratings["box"] = ratings.box.fillna(-1).astype(np.int64)
    ratings["label"] = ratings.label.astype(object).where(ratings.box >= 0, ABSENT)
    return ratings.sort_values(["cluster", "annotator"]).reset_index(drop=True)
