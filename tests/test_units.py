"""Box clusters as reliability units: greedy IoU matching, absent vs missing, conflicts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from annotate.metrics.geometry import box_distance, iou
from quality.agreement.units import ABSENT, _greedy_matches, build_units
from tests.quality_sets import make_set


def clusters_of(units) -> dict[tuple[str, str], int]:
    return {(r.annotator, r.label): r.cluster for r in units.boxes.itertuples()}


def test_matching_absent_and_missing():
    ts = make_set(
        seen=[("1", "a"), ("1", "b"), ("1", "c"), ("2", "a")],  # d never saw image 1
        boxes=[("1", "a", "cat", 10, 10, 50, 50), ("1", "b", "cat", 12, 10, 52, 50),
               ("1", "c", "dog", 11, 11, 51, 49),
               ("1", "a", "cup", 100, 100, 150, 150), ("1", "b", "cup", 104, 102, 150, 152),
               ("1", "b", "pen", 160, 10, 190, 40),  # only b drew it
               ("2", "a", "cat", 0, 0, 10, 10)])
    units = build_units(ts)
    ratings = units.ratings
    first = ratings[ratings.cluster == units.boxes.cluster[0]]
    assert sorted(first.annotator) == ["a", "b", "c"]
    assert sorted(first.label) == ["cat", "cat", "dog"]
    pen = ratings[ratings.cluster == units.boxes.cluster[5]].set_index("annotator").label
    assert pen.to_dict() == {"a": ABSENT, "b": "pen", "c": ABSENT}
    cup = ratings[ratings.cluster == units.boxes.cluster[3]].set_index("annotator").label
    assert cup.to_dict() == {"a": "cup", "b": "cup", "c": ABSENT}
    assert "d" not in set(ratings.annotator)
    lone = ratings[ratings.image_id == "2"]
    assert lone.annotator.tolist() == ["a"]  # image 2: one rater, no absent rows for others
    assert units.boxes.cluster.nunique() == 4


def test_threshold_is_configurable():
    ts = make_set(seen=[("1", "a"), ("1", "b")],
                  boxes=[("1", "a", "cat", 10, 10, 50, 50), ("1", "b", "cat", 16, 10, 56, 50)])
    overlap = iou(np.array([[10, 10, 50, 50.]]), np.array([[16, 10, 56, 50.]]))[0]
    assert 0.5 < overlap < 0.9
    assert build_units(ts, 0.5).boxes.cluster.nunique() == 1
    assert build_units(ts, 0.9).boxes.cluster.nunique() == 2
    with pytest.raises(ValueError, match="iou_threshold"):
        build_units(ts, 0)


def test_one_box_per_annotator_and_cluster_even_through_chains():
    # a0 ~ b0 ~ c0 ~ a1: a chain that would put both of a's boxes in one cluster.
    ts = make_set(seen=[("1", "a"), ("1", "b"), ("1", "c")],
                  boxes=[("1", "a", "x", 0, 0, 100, 100), ("1", "b", "x", 0, 0, 100, 130),
                         ("1", "c", "x", 0, 20, 100, 150), ("1", "a", "x", 0, 40, 100, 160)])
    units = build_units(ts, 0.5)
    per = units.boxes.groupby(["cluster", "annotator"]).size()
    assert per.max() == 1
    assert units.ratings.groupby(["cluster", "annotator"]).size().max() == 1


def python_greedy(left, right, overlap, annotator):
    """Reference: for each annotator pair, sort candidates by IoU and take free pairs."""
    order = np.lexsort((np.arange(len(overlap)), -overlap))
    used, taken = set(), set()
    for k in order:
        i, j = left[k], right[k]
        side_i, side_j = (i, annotator[j]), (j, annotator[i])
        if side_i in used or side_j in used:
            continue
        used.update([side_i, side_j])
        taken.add((i, j))
    return taken


def test_parallel_greedy_equals_sequential_greedy():
    rng = np.random.default_rng(2)
    for _ in range(30):
        n = 40
        annotator = rng.integers(0, 4, n)
        left, right = np.triu_indices(n, 1)
        keep = annotator[left] != annotator[right]
        left, right = left[keep], right[keep]
        overlap = np.round(rng.random(len(left)), 2)  # with ties
        keep = overlap > 0.4
        left, right, overlap = left[keep], right[keep], overlap[keep]
        got_left, got_right = _greedy_matches(left, right, overlap, annotator)
        got = set(zip(got_left.tolist(), got_right.tolist(), strict=True))
        assert got == python_greedy(left, right, overlap, annotator)


def test_box_distance_absent_rules():
    present = np.array([[1, 0, 0, 10, 10], [1, 0, 0, 10, 10], [0, 0, 0, 0, 0.]])
    other = np.array([[1, 0, 0, 10, 20], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0.]])
    assert box_distance(present, other).tolist() == [0.5, 1.0, 0.0]


def test_no_human_boxes_gives_empty_units():
    ts = make_set(seen=[("1", "a"), ("1", "b")])
    units = build_units(ts)
    assert units.boxes.empty and units.ratings.empty
    assert isinstance(units.ratings, pd.DataFrame)


def test_exact_iou_ties_do_not_depend_on_row_order():
    """A's box overlaps B's cat and B's dog equally: which one it matches must be decided by
    content, not by which row came first."""
    import numpy as np

    from annotate.tables.schema import TableSet

    def boxes(order):
        rows = [{"image_id": "1", "annotator": "A", "object_id": "a", "label": "cat",
                 "x0": 10, "y0": 0, "x1": 20, "y1": 10, "source": "human"},
                {"image_id": "1", "annotator": "B", "object_id": "b1", "label": "cat",
                 "x0": 5, "y0": 0, "x1": 15, "y1": 10, "source": "human"},
                {"image_id": "1", "annotator": "B", "object_id": "b2", "label": "dog",
                 "x0": 15, "y0": 0, "x1": 25, "y1": 10, "source": "human"}]
        return [rows[i] for i in order]

    seen = [{"image_id": "1", "annotator": a, "source": "human"} for a in "AB"]
    images = [{"image_id": "1", "path": "x", "width": 50, "height": 50}]
    results = set()
    for order in ([0, 1, 2], [0, 2, 1], [2, 1, 0], [1, 2, 0]):
        units = build_units(TableSet(images, seen, boxes(order), labels=["cat", "dog"]), 0.3)
        partner = units.boxes.groupby("cluster").object_id.apply(frozenset)
        results.add(frozenset(partner[partner.map(lambda s: "a" in s)]))
        assert np.isfinite(units.boxes.cluster).all()
    assert len(results) == 1
