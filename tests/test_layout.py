"""The layout contract (with and without detection scores) and the score distributions that
gold layouts draw their scores from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from annotate.formats.layout import EMPTY, LayoutObject, decode_layout, encode_layouts
from annotate.runtime.errors import UserError
from stage2_generate.noise import Noise, ScoreDistributions, calibrate_scores, corrupt

LABELS = ["red circle", "blue square"]


def _layout():
    images = pd.DataFrame({"image_id": ["a", "b", "c"], "width": [160, 320, 100],
                           "height": [160, 160, 100]})
    boxes = pd.DataFrame({"image_id": ["a", "a", "b"], "label": ["blue square", "red circle",
                                                                  "red circle"],
                          "x0": [100.0, 0.0, 300.0], "y0": [10.0, 150.0, 0.0],
                          "x1": [159.0, 30.0, 320.0], "y1": [40.0, 160.0, 80.0],
                          "score": [0.05, 0.99, np.nan]})
    return boxes, images


def test_layout_round_trips_with_and_without_scores():
    boxes, images = _layout()
    plain = encode_layouts(boxes, images)
    scored = encode_layouts(boxes, images, score_bins=5)
    # left to right; corners in 16 bins of the image's own size; NaN score = certain (top)
    assert plain["a"] == "red circle x0 y15 x3 y15 ; blue square x10 y1 x15 y4"
    assert scored["a"] == "red circle x0 y15 x3 y15 s4 ; blue square x10 y1 x15 y4 s0"
    assert scored["b"] == "red circle x15 y0 x15 y8 s4" and scored["c"] == EMPTY
    assert decode_layout(plain["a"]) == [LayoutObject("red circle", 0, 15, 3, 15, None),
                                         LayoutObject("blue square", 10, 1, 15, 4, None)]
    assert decode_layout(scored["a"]) == [LayoutObject("red circle", 0, 15, 3, 15, 4),
                                          LayoutObject("blue square", 10, 1, 15, 4, 0)]
    assert decode_layout(EMPTY) == []
    # boxes without a score column are certain too; scores do not move the boxes' words
    assert encode_layouts(boxes.drop(columns="score"), images, score_bins=5)["a"].count(
        " s4") == 2
    assert [o[:5] for o in decode_layout(scored["a"])] == [o[:5]
                                                            for o in decode_layout(plain["a"])]
    # bucket edges: [0, 0.2) -> s0 ... [0.8, 1] -> s4 (score 1.0 stays in the top bucket)
    edges = boxes.iloc[[0] * 5].assign(score=[0.0, 0.1999, 0.2, 0.8, 1.0])
    words = [o.score for o in decode_layout(encode_layouts(edges, images, score_bins=5)["a"])]
    assert sorted(words) == [0, 0, 1, 4, 4]
    with pytest.raises(UserError, match="not an encoded object"):
        decode_layout("red circle x1 y2")
    with pytest.raises(UserError, match="score_bins"):
        encode_layouts(boxes, images, score_bins=-1)


def test_score_draws_reproduce_the_calibration_distributions():
    rng = np.random.default_rng(0)
    found = np.clip(rng.beta(5, 3, 3000), 0.1, 1)  # matches: mostly confident
    spurious = rng.uniform(0.1, 0.3, 800)  # spurious: near the threshold
    wrong = np.clip(rng.beta(5, 3, 300), 0.1, 1)
    errors = pd.DataFrame({
        "image_id": [str(k % 500) for k in range(4300)],
        "status": ["matched"] * 3000 + ["spurious"] * 800 + ["wrong_label"] * 300 + [
            "missed"] * 200,
        "gold_label": None, "pred_label": None, "iou": np.nan,
        "score": np.concatenate([found, spurious, wrong, np.full(200, np.nan)])})
    scores = calibrate_scores(errors)
    draw = np.random.default_rng(1)
    assert ks_2samp(scores.draw("found", 20000, draw),
                    np.concatenate([found, wrong])).statistic < 0.03
    assert ks_2samp(scores.draw("spurious", 20000, draw), spurious).statistic < 0.03
    assert min(scores.spurious) == pytest.approx(spurious.min(), abs=1e-6)

    # corrupted gold: kept objects draw found scores, injected spurious ones spurious scores
    images = pd.DataFrame({"image_id": [str(i) for i in range(2000)], "width": 200,
                           "height": 200})
    gold = pd.DataFrame({"image_id": images.image_id, "object_id": images.image_id,
                         "label": "red circle", "x0": 50.0, "y0": 50.0, "x1": 90.0,
                         "y1": 90.0, "score": np.nan})
    out = corrupt(gold, images, Noise(spurious=0.5), LABELS, draw, scores)
    injected = out.object_id.str.startswith("noise")
    assert out.score.notna().all() and injected.sum() > 800
    assert ks_2samp(out.score[~injected], np.concatenate([found, wrong])).statistic < 0.05
    assert ks_2samp(out.score[injected], spurious).statistic < 0.06
    # no noise, scores only: every gold object kept, where it was, with a found score
    scored = corrupt(gold, images, Noise(), LABELS, draw, scores)
    assert scored[["x0", "y1"]].equals(gold[["x0", "y1"]]) and scored.score.notna().all()
    assert corrupt(gold, images, Noise(), LABELS, draw) is gold


def test_score_distributions_refuse_what_they_cannot_draw_from():
    errors = pd.DataFrame({"image_id": ["1", "2"], "status": ["matched", "matched"],
                           "gold_label": None, "pred_label": None, "iou": np.nan,
                           "score": [0.5, 0.6]})
    only_found = calibrate_scores(errors)  # a detector with no spurious detection
    assert only_found.spurious == [] and len(only_found.draw("spurious", 0, np.random.default_rng(
        0))) == 0
    with pytest.raises(UserError, match="no spurious detection scores"):
        only_found.draw("spurious", 3, np.random.default_rng(0))
    with pytest.raises(UserError, match="has none"):
        calibrate_scores(errors.assign(score=np.nan))
    with pytest.raises(UserError, match="no `score` column"):
        calibrate_scores(errors.drop(columns="score"))
    with pytest.raises(UserError, match="non-decreasing quantiles"):
        ScoreDistributions(found=[0.5] * 101, spurious=[0.2, 0.1] + [0.3] * 99)
