"""The operating threshold chosen by stage-2 score (`quality.cascade.threshold`) and validation
against test (`quality.cascade.summary.agreement`), on hand-made inputs with known answers."""

from __future__ import annotations

import pandas as pd
import pytest

from annotate.runtime.errors import UserError
from quality.cascade.summary import agreement, gaps
from quality.cascade.threshold import choose, score_curve
from stage1_detect.handover import at_threshold


def test_choose_takes_the_best_score_and_breaks_ties_upwards():
    curve = pd.DataFrame({"threshold": [0.1, 0.2, 0.3, 0.4, 0.5],
                          "score": [1.0, 1.4, 1.7, 1.2, 0.9]})
    assert choose(curve) == 0.3
    tied = curve.assign(score=[1.0, 1.7, 1.7, 1.2, 0.9])
    assert choose(tied) == 0.3
    with pytest.raises(UserError, match="no threshold"):
        choose(curve.assign(score=float("nan")))


def test_score_curve_finds_the_threshold_whose_layouts_stage_2_reads_best():
    """Image a holds two objects (detected at 0.9 and 0.6) and a spurious detection at 0.2;
    image b one object at 0.45. A stage 2 that is right only when it reads every object and
    nothing else scores 1 per such image: every threshold in (0.2, 0.45] is right on both
    images, and the highest of them wins."""
    boxes = pd.DataFrame({"image_id": ["a", "a", "a", "b"], "score": [0.9, 0.6, 0.2, 0.45],
                          "real": [True, True, False, True]})
    images = pd.DataFrame({"image_id": ["a", "b"]})
    truth = {"a": 2, "b": 1}

    def stage2(kept: pd.DataFrame) -> pd.Series:
        found = kept.groupby("image_id").real.agg(["sum", "size"])
        found = found.reindex(list(truth), fill_value=0)
        return pd.Series([float(found.loc[i, "sum"] == found.loc[i, "size"] == truth[i])
                          for i in truth], index=list(truth))

    curve = score_curve(boxes, images, stage2, thresholds=(0.1, 0.3, 0.4, 0.5, 0.7))
    assert curve.score.tolist() == [0.5, 1.0, 1.0, 0.5, 0.0]
    assert curve.boxes_per_image.tolist() == [2.0, 1.5, 1.5, 1.0, 0.5]
    assert choose(curve) == 0.4


def test_a_threshold_needs_confidences():
    with pytest.raises(UserError, match="no `score` column"):
        at_threshold(pd.DataFrame({"image_id": ["a"]}), 0.5)
    kept = at_threshold(pd.DataFrame({"image_id": ["a", "b"], "score": [0.3, 0.5]}), 0.5)
    assert kept.image_id.tolist() == ["b"]


def _scores(drop: float, n: int = 40, noise: float = 0.1) -> pd.DataFrame:
    gold = 2.0 + noise * (pd.RangeIndex(n) % 3 - 1)
    return pd.DataFrame({"cider_d_gold": gold, "cider_d_predicted": gold - drop},
                        index=pd.Index([f"i{k}" for k in range(n)], name="image_id"))


def _errors(missed_share: float, n_images: int = 40) -> pd.DataFrame:
    """Two gold objects per image, a share of them missed, one spurious per ten images."""
    rows = []
    for k in range(n_images):
        for j in range(2):
            status = "missed" if (2 * k + j) < missed_share * 2 * n_images else "matched"
            rows.append({"image_id": f"i{k}", "status": status, "gold_object_id": f"g{k}{j}",
                         "pred_object_id": None if status == "missed" else f"p{k}{j}"})
        if k % 10 == 0:
            rows.append({"image_id": f"i{k}", "status": "spurious", "gold_object_id": None,
                         "pred_object_id": f"s{k}"})
    return pd.DataFrame(rows)


def test_validation_and_test_agree_or_are_flagged():
    same = agreement({("d", "gold"): _scores(0.5)}, {("d", "gold"): _scores(0.5)},
                     {"d": _errors(0.1)}, {"d": _errors(0.1)}, n_boot=200, seed=0)
    assert same["flagged"] == []
    recall = same["stage1"]["d"]["recall"]
    assert recall["val"] == recall["test"] == pytest.approx(0.9)
    assert same["stage1"]["d"]["spurious_rate"]["test"] == pytest.approx(4 / 76)
    assert same["stage2"]["d"]["gold"]["drop"]["difference"] == pytest.approx(0.0)

    apart = agreement({("d", "gold"): _scores(0.5)}, {("d", "gold"): _scores(1.5)},
                      {"d": _errors(0.1)}, {"d": _errors(0.5)}, n_boot=200, seed=0)
    drop = apart["stage2"]["d"]["gold"]["drop"]
    assert drop["difference"] == pytest.approx(1.0) and drop["disagree"]
    assert not apart["stage2"]["d"]["gold"]["gold"]["disagree"]  # perfect input: same scores
    assert apart["stage1"]["d"]["recall"]["disagree"]
    assert set(apart["flagged"]) == {"d: recall", "d, gold: predicted", "d, gold: drop"}


def test_gap_reports_the_change_of_the_perfect_input_score():
    """A robust variant that loses 0.2 on perfect input on every image: the change is -0.2
    with a paired interval of -0.2 (every image alike); the gold-trained variant has none."""
    robust = _scores(0.25).assign(cider_d_gold=lambda t: t.cider_d_gold - 0.2,
                                  cider_d_predicted=lambda t: t.cider_d_predicted - 0.2)
    result = gaps({("d", "gold"): _scores(0.5), ("d", "noise"): robust}, n_boot=100,
                  seed=0)["d"]
    assert result["noise"]["gold_change"] == pytest.approx(-0.2)
    assert result["noise"]["gold_change_ci_low"] == pytest.approx(-0.2)
    assert result["noise"]["reduction"] == pytest.approx(0.5)
    assert result["gold"]["gold_change"] is None
    assert result["gold"]["gold_ci_low"] <= result["gold"]["gold"] <= result["gold"][
        "gold_ci_high"]


def _verdict_block(training_variance: str) -> dict:
    """A summary block by hand: the gold-trained model drops 0.8, a robust variant scores
    0.3 higher on the detector's output with an interval above 0."""
    gold = {"gold": 2.5, "predicted": 1.7, "drop": 0.8, "ci_low": 0.6, "ci_high": 1.0,
            "reduction": 0.0}
    robust = {"gold": 2.45, "predicted": 2.0, "drop": 0.45, "ci_low": 0.3, "ci_high": 0.6,
              "reduction": 0.44, "reduction_ci_low": 0.2, "reduction_ci_high": 0.6,
              "predicted_change": 0.3, "predicted_change_ci_low": 0.1,
              "predicted_change_ci_high": 0.5, "gold_change": -0.05,
              "gold_change_ci_low": -0.2, "gold_change_ci_high": 0.1}
    return {"metric": "cider_d", "test_images": 175,
            "resampled": {"unit": "image", "training_variance": training_variance},
            "detectors": {"deployed detector": {"recall": 0.8, "threshold": 0.1}},
            "gap": {"deployed detector": {"gold": gold, "oof": robust}},
            "baseline": {"deployed detector": {"gold": 3.1, "drop": 1.9}}}


def test_one_trained_model_per_variant_claims_no_difference_between_trained_models():
    from quality.cascade.summary import ONE_MODEL, verdict

    lines = verdict(_verdict_block("not measured"), "deployed detector", None)
    assert lines[1] == ONE_MODEL
    text = " ".join(lines)
    assert "not a finding" in text and "over the gold-trained model" not in text
    assert "does not beat" not in text and "below this floor on these test images" in text
    measured = " ".join(verdict(_verdict_block("measured"), "deployed detector", None))
    assert ONE_MODEL not in measured
    assert "The best robust variant, oof, scores 2.000" in measured
    assert "does not beat this floor" in measured


def test_a_best_at_the_highest_candidate_widens_the_search():
    """Stage 2 reads best with two boxes per image: kept at thresholds in (0.3, 0.85], so on the
    usual grid the best is its highest candidate (0.7); the search goes on to 0.8-0.95 and the
    choice (0.8, ties upwards) sits inside the widened grid."""
    from quality.cascade.threshold import THRESHOLDS, search

    images = pd.DataFrame({"image_id": ["1", "2"]})
    boxes = pd.DataFrame({"image_id": ["1"] * 3 + ["2"] * 3,
                          "score": [0.93, 0.85, 0.3, 0.93, 0.85, 0.3]})

    def score(kept: pd.DataFrame) -> pd.Series:
        counts = kept.groupby("image_id").size().reindex(images.image_id, fill_value=0)
        return -(counts - 2).abs().astype(float)

    curve, chosen, widened = search(boxes, images, score, THRESHOLDS)
    assert widened == [0.8, 0.9, 0.95] and chosen == 0.8
    assert len(curve) == len(THRESHOLDS) + 3
    narrow = search(boxes, images, score, (0.05, 0.5, 0.9))
    assert narrow[1:] == (0.5, [])  # not at the top: nothing added


def _box(image, label, x0, score, oid):
    return {"image_id": image, "label": label, "x0": x0, "y0": 0.0, "x1": x0 + 10.0,
            "y1": 10.0, "score": score, "object_id": oid}


def test_suppression_removes_a_duplicate_and_keeps_an_overlapping_object():
    """A second box of another class on one object (IoU 0.82) goes at IoU 0.5; a real
    neighbour of another class overlapping by IoU 0.33 stays at 0.5 and goes at 0.3."""
    from stage1_detect.handover import suppress

    boxes = pd.DataFrame([_box("a", "cat", 0, 0.9, "real"), _box("a", "dog", 1, 0.3, "dup"),
                          _box("a", "dog", 5, 0.8, "neighbour"),
                          _box("b", "dog", 1, 0.3, "other image")])
    assert suppress(boxes, None).object_id.tolist() == boxes.object_id.tolist()
    assert suppress(boxes, 0.5).object_id.tolist() == ["real", "neighbour", "other image"]
    assert suppress(boxes, 0.3).object_id.tolist() == ["real", "other image"]


def test_suppression_is_chosen_only_when_stage_2_reads_it_better():
    """Stage 2 scores an image by how close it is to one box: the duplicates make every
    threshold worse until they are suppressed, so the hand-over chooses suppression; a stage 2
    indifferent to duplicates keeps the plain threshold (None)."""
    from quality.cascade.threshold import choose_suppression, search, suppression_curve

    images = pd.DataFrame({"image_id": ["1", "2"]})
    # image 1: an object and a confident duplicate on it; image 2: one unsure object
    boxes = pd.DataFrame([_box("1", "cat", 0, 0.9, "a"), _box("1", "dog", 1, 0.8, "b"),
                          _box("2", "cat", 0, 0.4, "c")])

    def one_box(kept):
        counts = kept.groupby("image_id").size().reindex(images.image_id, fill_value=0)
        return -(counts - 1).abs().astype(float)

    curve, chosen, _ = search(boxes, images, one_box, (0.1, 0.5))
    suppressed = suppression_curve(boxes, images, one_box, curve)
    assert set(suppressed.iou) == {0.7, 0.5, 0.3} and set(suppressed.threshold) == {0.1, 0.5}
    assert chosen == 0.1 and curve.score.max() == -0.5  # no threshold removes the duplicate
    assert choose_suppression(curve, suppressed, chosen) == (0.1, 0.7)  # ties: lighter touch

    def indifferent(kept):
        return pd.Series(1.0, index=images.image_id)

    curve, chosen, _ = search(boxes, images, indifferent, (0.1, 0.5))
    suppressed = suppression_curve(boxes, images, indifferent, curve)
    assert choose_suppression(curve, suppressed, chosen) == (chosen, None)
