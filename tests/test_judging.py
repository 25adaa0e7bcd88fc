"""Judgment studies: the statistics against known answers from simulated judges (coverage of
the win rate's interval, a planted position bias, judge agreement at known noise), Kendall's
tau against scipy, the reading of Label Studio answers. A study on a run folder is tested in
tests/test_report.py (which has a run), the live round trip in tests/test_ls_live.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau

from quality.judging import analysis
from quality.judging.design import draw_tasks, half_width, pairwise_config, tasks_needed
from quality.judging.labelstudio import TASK_KEY, read_judgments
from quality.judging.simulate import Judges, expected_win_rates, simulate

SYSTEMS = ["model", "baseline", "human"]


def synthetic(images: int = 80, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Tasks over three systems whose captions differ in quality (human best), and the
    qualities: what a study of a run gives, without a run."""
    rng = np.random.default_rng(seed)
    ids = [f"img{k}" for k in range(images)]
    base = {"model": 0.75, "baseline": 0.65, "human": 0.85}
    quality = pd.Series({(i, s): np.clip(base[s] + rng.normal(0, 0.15), 0, 1)
                         for i in ids for s in SYSTEMS})
    captions = pd.DataFrame([{"image_id": i, "system": s, "caption": f"{s} says {i}"}
                             for i in ids for s in SYSTEMS])
    return draw_tasks(captions, SYSTEMS, images, seed), quality


def test_kendall_tau_b_and_c_equal_scipy_with_ties_and_with_bootstrap_weights():
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 5, 60).astype(float), rng.normal(size=60).round(1)
    tau_b, tau_c = analysis.kendall(x, y)
    assert tau_b[0] == pytest.approx(kendalltau(x, y, variant="b").statistic, abs=1e-12)
    assert tau_c[0] == pytest.approx(kendalltau(x, y, variant="c").statistic, abs=1e-12)
    weights = rng.integers(0, 3, (4, 60))  # a draw: each item taken 0, 1 or 2 times
    boot_b, boot_c = analysis.kendall(x, y, weights)
    for row, b, c in zip(weights, boot_b, boot_c, strict=True):
        rows = np.repeat(np.arange(60), row)
        assert b == pytest.approx(kendalltau(x[rows], y[rows], variant="b").statistic)
        assert c == pytest.approx(kendalltau(x[rows], y[rows], variant="c").statistic)


def test_the_win_rate_interval_covers_the_simulated_truth_in_90_percent_of_studies():
    tasks, quality = synthetic()
    judges = Judges(judges=5, raters_per_item=3, temperature=0.15, lapse=(0.0, 0.1, 0.3))
    truth = expected_win_rates(tasks, quality, judges)
    covered = []
    for seed in range(60):
        rates = analysis.win_rates(simulate(tasks, quality, judges, seed), n_boot=300, seed=seed)
        for row in rates.itertuples():
            covered.append(row.ci_low <= truth[row.a, row.b] <= row.ci_high)
    assert np.mean(covered) >= 0.9, np.mean(covered)
    assert truth["human", "model"] > 0.55 and truth["baseline", "model"] < 0.45  # not trivial


def test_a_planted_position_bias_is_found_and_none_is_found_where_none_was_planted():
    tasks, quality = synthetic(images=120)
    biased = analysis.position_bias(simulate(tasks, quality, Judges(left_bias=1.0), seed=1))
    assert biased["biased"] and biased["left_share"] > 0.55 and biased["ci_low"] > 0.5
    fair = analysis.position_bias(simulate(tasks, quality, Judges(left_bias=0.0), seed=1))
    assert not fair["biased"] and fair["ci_low"] < 0.5 < fair["ci_high"]
    # the randomised order undoes the bias in the win rates: the pairs (baseline, human),
    # (baseline, model), (human, model) are ordered as the qualities are
    assert (analysis.win_rates(simulate(tasks, quality, Judges(left_bias=1.0), 2)).win_rate
            > 0.5).tolist() == [False, False, True]


def test_judge_agreement_is_one_for_perfect_judges_and_zero_for_coin_flips():
    tasks, quality = synthetic(images=150)
    perfect = analysis.judge_agreement(simulate(tasks, quality, Judges(
        temperature=1e-6, lapse=0.0), seed=0), n_boot=200)
    assert perfect["alpha"] == pytest.approx(1.0)
    random = analysis.judge_agreement(simulate(tasks, quality, Judges(lapse=1.0), seed=0),
                                      n_boot=200)
    assert abs(random["alpha"]) < 0.08 and random["ci_low"] < 0 < random["ci_high"]
    noisy = analysis.judge_agreement(simulate(tasks, quality, Judges(
        judges=4, raters_per_item=4, temperature=1e-6, lapse=(0.0, 0.0, 0.0, 1.0)), seed=0),
        n_boot=200)
    scores = {j["judge"]: j["agreement"] for j in noisy["judges"]}
    assert min(scores, key=scores.get) == "judge-4"  # the coin-flipper agrees least


def test_bradley_terry_orders_the_systems_by_their_quality():
    tasks, quality = synthetic()
    scores = analysis.bradley_terry(simulate(tasks, quality, Judges(), seed=0), n_boot=50)
    assert scores.system.tolist() == ["human", "model", "baseline"]
    assert (scores.ci_low <= scores.score).all() and (scores.score <= scores.ci_high).all()
    assert scores.score.sum() == pytest.approx(0.0, abs=1e-9)


def test_the_metric_the_judges_follow_tracks_them_and_a_random_one_does_not():
    tasks, quality = synthetic(images=120)
    judgments = simulate(tasks, quality, Judges(temperature=0.05, lapse=0.0), seed=0)
    rng = np.random.default_rng(0)
    scores = pd.DataFrame({"image_id": quality.index.get_level_values(0),
                           "system": quality.index.get_level_values(1),
                           "followed": quality.to_numpy(), "random": rng.random(len(quality))})
    result = analysis.metric_agreement(judgments, scores, n_boot=200)["metrics"]
    assert result["followed"]["tau_b"] > 0.6 and result["followed"]["tau_b_ci"][0] > 0.5
    assert abs(result["random"]["tau_b"]) < 0.15
    assert result["followed"]["system_agreement"] == 1.0 and result["followed"]["tasks"] == 360


def test_planning_sizes_the_study_for_the_interval_asked():
    assert tasks_needed(0.05, 1, icc=0.0) == 385  # (1.96 * 0.5 / 0.05)^2, one judge
    assert half_width(tasks_needed(0.05, 3), 3) <= 0.05 < half_width(tasks_needed(0.05, 3) - 5, 3)
    tasks, _ = synthetic(images=10)
    assert len(tasks) == 30 and set(tasks.columns) >= {"task", "left", "right", "left_caption"}
    flipped = (tasks.left.map(SYSTEMS.index) > tasks.right.map(SYSTEMS.index)).mean()
    assert 0.2 < flipped < 0.8  # the order is drawn, not fixed
    assert 'name="choice"' in pairwise_config() and "$left_caption" in pairwise_config()


def test_label_studio_answers_are_read_with_every_skip_counted():
    plan = {"tasks": [{"task": "t1", "image_id": "i1", "left": "oof", "right": "gold"},
                      {"task": "t2", "image_id": "i2", "left": "gold", "right": "human"}]}

    def answer(result, email="a@x.org", cancelled=False):
        return {"completed_by": {"email": email}, "was_cancelled": cancelled,
                "lead_time": 9.5, "result": result}

    left = [{"from_name": "choice", "to_name": "choice", "type": "pairwise",
             "value": {"selected": "left"}}]
    tie = [{"from_name": "tie", "to_name": "image", "type": "choices",
            "value": {"choices": ["Both equally good (or equally bad)"]}}]
    export = [{"data": {TASK_KEY: "t1"}, "annotations": [answer(left), answer(
                  tie, "b@x.org"), answer(left, cancelled=True)]},
              {"data": {TASK_KEY: "t2"}, "annotations": [answer([]), answer(left, "b@x.org")]},
              {"data": {TASK_KEY: "t9"}, "annotations": [answer(left)]}]
    judgments, counts = read_judgments(export, plan, "export.json")
    assert counts == {"read": 6, "kept": 3, "skipped": {
        "cancelled (skipped by the judge)": 1, "no choice made": 1,
        "task not in the study's plan": 1}}
    assert judgments[["task", "judge", "left", "choice"]].values.tolist() == [
        ["t1", "a@x.org", "oof", "left"], ["t1", "b@x.org", "oof", "tie"],
        ["t2", "b@x.org", "gold", "left"]]
    rates = analysis.win_rates(judgments, n_boot=0).set_index(["a", "b"])
    assert rates.loc[("gold", "oof"), "win_rate"] == 0.25  # oof won once, one tie
    with pytest.raises(Exception, match="not a Label Studio JSON export"):
        read_judgments({"tasks": []}, plan, "x.json")
