"""Consensus boxes and captions: majorities, medians, ties flagged, rows valid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from annotate.formats.ls_import import import_export
from annotate.metrics.geometry import iou
from annotate.tables import store
from quality.gold.consensus import build_consensus
from tests.conftest import REPO
from tests.quality_sets import make_set

THREE = [("1", "a"), ("1", "b"), ("1", "c")]


def gold(result) -> pd.DataFrame:
    boxes = result.tables.boxes
    return boxes[boxes.source == "consensus"].reset_index(drop=True)


def test_majority_keeps_box_median_and_label():
    ts = make_set(THREE, boxes=[
        ("1", "a", "cat", 10, 10, 50, 50), ("1", "b", "cat", 12, 10, 54, 50),
        ("1", "c", "dog", 14, 12, 52, 56),
        ("1", "a", "pen", 100, 100, 150, 150)])  # 1 of 3: dropped
    result = build_consensus(ts)
    boxes = gold(result)
    assert len(boxes) == 1
    row = boxes.iloc[0]
    assert row.label == "cat" and row.annotator == "consensus"
    assert [row.x0, row.y0, row.x1, row.y1] == [12, 10, 52, 50]
    assert row.score == pytest.approx(1.0)
    assert result.flags.empty or "presence_tie" not in set(result.flags.kind)


def test_ties_are_flagged_and_follow_the_policy():
    ts = make_set([("1", "a"), ("1", "b"), ("2", "a"), ("2", "b"), ("2", "c")], boxes=[
        ("1", "a", "cat", 10, 10, 50, 50),  # 1 of 2 annotators: a presence tie
        ("2", "a", "cat", 10, 10, 50, 50), ("2", "b", "dog", 10, 10, 50, 50),
        ("2", "c", "cat", 100, 100, 120, 120), ("2", "b", "dog", 100, 100, 120, 120),
        ("2", "a", "dog", 150, 150, 190, 190), ("2", "b", "dog", 150, 150, 190, 190),
    ])
    kept = build_consensus(ts, tie="keep")
    dropped = build_consensus(ts, tie="drop")
    assert len(gold(kept)) == 4 and len(gold(dropped)) == 3
    assert set(gold(dropped).image_id) == {"2"}
    kinds = kept.flags.groupby("kind").size().to_dict()
    assert kinds["presence_tie"] == 1
    # Two clusters tie cat vs dog; "dog" is the more frequent label overall, so it wins.
    assert kinds["label_tie"] == 2
    image2 = gold(kept)[gold(kept).image_id == "2"]
    assert set(image2.label) == {"dog"}
    with pytest.raises(ValueError, match="tie must be one of"):
        build_consensus(ts, tie="coin")


def test_consensus_captions_are_the_medoid_and_disagreement_is_flagged():
    ts = make_set([*THREE, ("2", "a"), ("2", "b")], captions=[
        ("1", "a", "a red circle left of a blue square"),
        ("1", "b", "a red circle to the left of a blue square"),
        ("1", "c", "the red circle is left of the blue square"),
        ("2", "a", "a cat"), ("2", "b", "three green triangles in a row"),
    ])
    result = build_consensus(ts)
    captions = result.tables.captions
    chosen = captions[captions.source == "consensus"].set_index("image_id").caption
    assert chosen["1"] == "a red circle left of a blue square"
    assert (captions.source == "human").sum() == 5  # every human caption stays as a reference
    low = result.flags[result.flags.kind == "low_caption_agreement"]
    assert low.image_id.tolist() == ["2"]


def test_consensus_rows_are_valid_and_rerunning_replaces_them(tmp_path):
    ts = make_set(THREE, boxes=[("1", "a", "cat", 10, 10, 50, 50),
                                ("1", "b", "cat", 10, 10, 50, 50)],
                  captions=[("1", "a", "a cat")])
    once = build_consensus(ts).tables
    twice = build_consensus(once).tables
    assert twice.counts() == once.counts()
    annotations = twice.annotations
    assert annotations[annotations.source == "consensus"].image_id.tolist() == ["1"]
    store.save(twice, tmp_path / "set")
    assert store.load(tmp_path / "set").counts() == twice.counts()


def test_demo_consensus_is_closer_to_truth_than_the_careless_annotator():
    ts, _ = import_export(REPO / "data/demo/export.json")
    truth = store.load(REPO / "data/demo/truth").boxes
    result = build_consensus(ts)

    def recall(boxes: pd.DataFrame) -> float:
        pairs = truth.merge(boxes, on=["image_id", "label"], suffixes=("", "_b"))
        overlap = iou(pairs[["x0", "y0", "x1", "y1"]].to_numpy(),
                      pairs[["x0_b", "y0_b", "x1_b", "y1_b"]].to_numpy())
        hit = pairs[overlap >= 0.5].drop_duplicates(["image_id", "object_id"])
        seen = truth[truth.image_id.isin(boxes.image_id.unique())]
        return len(hit) / len(seen)

    human = ts.boxes
    eve = human[human.annotator == "eve@example.com"]
    assert recall(gold(result)) > 0.95
    assert recall(gold(result)) > recall(eve) + 0.2
    assert np.isfinite(result.clusters.mean_iou).all()
