"""Judgment studies: the statistics against known answers from simulated judges (coverage of
the win rate's and the mean rating's intervals, a planted position bias, judge agreement at a
known noise level, a planted leniency), Kendall's tau against scipy, the interval
over training replicates, the reading of Label Studio answers. A study on a run folder is
tested in tests/test_report.py (which has a run), a study of two arms in tests/test_pipeline.py
(which has replicates), the live round trips in tests/test_ls_live.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau

from quality.judging import analysis, ratings
from quality.judging.design import (
    draw_rating_tasks,
    draw_tasks,
    half_width,
    pairwise_config,
    rating_config,
    rating_half_width,
    rating_images_needed,
    tasks_needed,
)
from quality.judging.jobs import _rating_truth
from quality.judging.labelstudio import TASK_KEY, read_judgments
from quality.judging.simulate import (
    Judges,
    RatingJudges,
    expected_ratings,
    expected_win_rates,
    simulate,
    simulate_ratings,
)

SYSTEMS = ["model", "baseline", "human"]


def synthetic(images: int = 80, seed: int = 0, design: str = "pairwise"
              ) -> tuple[pd.DataFrame, pd.Series]:
    """Tasks over three systems whose captions differ in quality (human best), and the
    qualities: what a study of a run gives, without a run."""
    rng = np.random.default_rng(seed)
    ids = [f"img{k}" for k in range(images)]
    base = {"model": 0.75, "baseline": 0.65, "human": 0.85}
    quality = pd.Series({(i, s): np.clip(base[s] + rng.normal(0, 0.15), 0, 1)
                         for i in ids for s in SYSTEMS})
    captions = pd.DataFrame([{"image_id": i, "system": s, "caption": f"{s} says {i}"}
                             for i in ids for s in SYSTEMS])
    if design == "rating":
        return draw_rating_tasks(captions, SYSTEMS, images, seed), quality
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


@pytest.mark.parametrize("lapse", [0.2, 0.4])
def test_judge_alpha_at_a_known_noise_level_lands_where_the_model_puts_it(lapse):
    """Judges who see the better caption without fail, except that each answers at random with
    probability `lapse`: two judges disagree with probability (1 - (1 - lapse)^2) / 2, and with
    a share p of tasks in the first category, D_e = 2 p (1 - p), p = (1 - lapse) pi + lapse / 2
    (pi: the share of tasks whose first system is better). Alpha = 1 - D_o / D_e."""
    tasks, quality = synthetic(images=250, seed=4)
    judges = Judges(judges=3, raters_per_item=3, temperature=1e-9, lapse=lapse)
    o = analysis.oriented(tasks.assign(judge="x", choice="left"))
    q_first, q_second = (quality.reindex(pd.MultiIndex.from_arrays([o.image_id, o[side]]))
                         .to_numpy() for side in ("a", "b"))
    pi = float(np.mean(q_first > q_second))
    p = (1 - lapse) * pi + lapse / 2
    model = 1 - 0.5 * (1 - (1 - lapse) ** 2) / (2 * p * (1 - p))
    got = [analysis.judge_agreement(simulate(tasks, quality, judges, seed), n_boot=200,
                                    seed=seed) for seed in range(5)]
    assert np.mean([g["alpha"] for g in got]) == pytest.approx(model, abs=0.03)
    assert sum(g["ci_low"] <= model <= g["ci_high"] for g in got) >= 4
    assert 0.25 < model < 0.7  # an intermediate level, not one of the ends


def test_mean_ratings_and_their_differences_cover_the_simulated_truth():
    tasks, quality = synthetic(images=60, design="rating")
    judges = RatingJudges(judges=4, noise=0.6, leniency=(0.0, 0.4, -0.4, 0.0), lapse=0.1)
    truth = _rating_truth(tasks, expected_ratings(tasks, quality, judges))
    means = {t["system"]: t["mean"] for t in truth["means"]}
    differences = {(t["a"], t["b"]): t["difference"] for t in truth["differences"]}
    covered = []
    for seed in range(60):
        rated = simulate_ratings(tasks, quality, judges, seed)
        for row in ratings.rating_means(rated, 300, seed).itertuples():
            covered.append(row.ci_low <= means[row.system] <= row.ci_high)
        for row in ratings.rating_differences(rated, 300, seed).itertuples():
            covered.append(row.ci_low <= differences[row.a, row.b] <= row.ci_high)
    assert np.mean(covered) >= 0.9, np.mean(covered)
    assert differences["human", "model"] > 0.2 and differences["baseline", "model"] < -0.2


def test_expected_ratings_are_the_mean_of_many_simulated_ratings():
    tasks, quality = synthetic(images=5, design="rating")
    judges = RatingJudges(judges=2, raters_per_item=2, noise=0.7, leniency=(0.3, -0.6),
                          lapse=(0.0, 0.2))
    copies = pd.concat([tasks.assign(copy=k) for k in range(3000)], ignore_index=True)
    many = simulate_ratings(copies.assign(task=copies.task + "-" + copies["copy"].astype(str)),
                            quality, judges, seed=0)
    observed = many.groupby(many.task.str.split("-").str[0]).rating.mean()
    expected = expected_ratings(tasks, quality, judges)
    np.testing.assert_allclose(observed[expected.index], expected, atol=0.04)  # 3 SE


def test_ordinal_judge_alpha_is_one_for_identical_judges_zero_for_random_and_finds_leniency():
    tasks, quality = synthetic(images=120, design="rating")
    same = ratings.rating_agreement(simulate_ratings(tasks, quality, RatingJudges(
        noise=1e-6, lapse=0.0), 0), n_boot=100)
    assert same["alpha"] == pytest.approx(1.0) and same["level"] == "ordinal"
    random = ratings.rating_agreement(simulate_ratings(tasks, quality, RatingJudges(
        lapse=1.0), 0), n_boot=200)
    assert abs(random["alpha"]) < 0.08 and random["ci_low"] < 0 < random["ci_high"]
    noisier = [ratings.rating_agreement(simulate_ratings(tasks, quality, RatingJudges(
        noise=noise, lapse=0.0), 0), n_boot=0)["alpha"] for noise in (0.3, 0.6, 1.2)]
    assert noisier == sorted(noisier, reverse=True)  # more noise, less agreement
    planted = ratings.rating_agreement(simulate_ratings(tasks, quality, RatingJudges(
        judges=3, noise=0.3, leniency=(0.0, 0.8, 0.0), lapse=0.0), 0), n_boot=0)
    leniency = {j["judge"]: j["leniency"] for j in planted["judges"]}
    assert max(leniency, key=leniency.get) == "judge-2" and leniency["judge-2"] > 0.6


def test_rating_metric_agreement_is_kendall_on_each_captions_mean_rating():
    tasks, quality = synthetic(images=80, design="rating")
    rated = simulate_ratings(tasks, quality, RatingJudges(noise=0.4, lapse=0.0), 0)
    rng = np.random.default_rng(1)
    scores = pd.DataFrame({"image_id": quality.index.get_level_values(0),
                           "system": quality.index.get_level_values(1),
                           "followed": quality.to_numpy(), "random": rng.random(len(quality))})
    result = ratings.rating_metric_agreement(rated, scores, n_boot=200)["metrics"]
    mean = rated.groupby(["image_id", "system"]).rating.mean()
    metric = scores.set_index(["image_id", "system"]).followed.reindex(mean.index)
    assert result["followed"]["tau_b"] == pytest.approx(
        kendalltau(mean, metric, variant="b").statistic)
    assert result["followed"]["tau_c"] == pytest.approx(
        kendalltau(mean, metric, variant="c").statistic)
    assert result["followed"]["tau_b_ci"][0] > 0.5 and abs(result["random"]["tau_b"]) < 0.15
    assert result["followed"]["system_agreement"] == 1.0
    assert result["followed"]["captions"] == 240


def test_rating_plans_size_for_the_difference_and_cover_every_system_on_the_same_images():
    assert rating_images_needed(0.2, 1, icc=0.0) == 97  # (1.96 / 0.2)^2
    assert rating_half_width(rating_images_needed(0.2, 3), 3) <= 0.2
    tasks, _ = synthetic(images=10, design="rating")
    assert len(tasks) == 30 and (tasks.groupby("image_id").system.nunique() == 3).all()
    assert tasks.system.iloc[:3].nunique() > 1 or tasks.system.iloc[3:6].nunique() > 1
    config = rating_config()
    assert 'name="rating"' in config and 'maxRating="5"' in config and "$caption" in config
    assert "system" not in config


def arm_study(rng, replicates: int, images: int = 120, delta: float = 0.0
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A judged study of two arms that differ by `delta` in quality and by seed: each
    replicate's captions are better or worse by a training effect (sd 0.1 in quality), each
    image's caption of each arm from a drawn replicate."""
    ids = [f"i{k}" for k in range(images)]
    base = rng.normal(0.7, 0.1, images)
    effect = {"A": rng.normal(0, 0.1, replicates), "B": delta + rng.normal(0, 0.1, replicates)}
    drawn = {arm: rng.integers(replicates, size=images) for arm in "AB"}
    quality = pd.Series({(i, f"{arm}:gold"): base[k] + effect[arm][drawn[arm][k]]
                         + rng.normal(0, 0.05) for k, i in enumerate(ids) for arm in "AB"})
    captions = pd.DataFrame([{"image_id": i, "system": f"{arm}:gold", "caption": "c",
                              "replicate": drawn[arm][k]} for k, i in enumerate(ids)
                             for arm in "AB"])
    tasks = draw_tasks(captions, ["A:gold", "B:gold"], images, int(rng.integers(1e6)),
                       [("A:gold", "B:gold")])
    judged = simulate(tasks, quality, Judges(temperature=0.05, lapse=0.05),
                      int(rng.integers(1e6)))
    return judged, tasks


def test_people_comparing_arms_that_differ_only_by_seed_rarely_claim_a_difference():
    """Arms of 3 replicates that differ only by seed, with training effects larger than the
    captions' own noise: the interval over images and replicates calls them different in at
    most 5% of studies (2.3% measured in 400; Welch-Satterthwaite degrees of freedom gave 7%,
    hence the conservative ones); an interval over images alone in far more; and a real
    difference between arms of 5 is still found."""
    rng = np.random.default_rng(5)
    claimed, images_only = [], []
    for _ in range(200):
        judged, tasks = arm_study(rng, 3)
        both = analysis.arm_win_rates(judged, tasks, {"A": 3, "B": 3}, n_boot=200).iloc[0]
        alone = analysis.arm_win_rates(judged, tasks, {"A": 1, "B": 1}, n_boot=200).iloc[0]
        claimed.append(not both.ci_low <= 0.5 <= both.ci_high)
        images_only.append(not alone.ci_low <= 0.5 <= alone.ci_high)
    assert np.mean(claimed) <= 0.05, np.mean(claimed)
    assert np.mean(images_only) > 3 * max(np.mean(claimed), 0.05), np.mean(images_only)
    assert both.resampled == "image x training replicate" and 0 < both.training_share < 1
    assert both.df == 2 and alone.df is None  # the smallest training part's K - 1
    assert alone.resampled == "image" and alone.training_share is None
    assert set(tasks.left_replicate) | set(tasks.right_replicate) == {0, 1, 2}
    found = [analysis.arm_win_rates(*arm_study(rng, 5, delta=0.25), {"A": 5, "B": 5},
                                    n_boot=200).iloc[0].ci_low > 0.5 for _ in range(50)]
    assert np.mean(found) >= 0.8  # a real difference is still found
    # one replicate per arm: the win rate of B over A is the complement of A's over B
    rates = analysis.win_rates(judged, n_boot=200).iloc[0]
    assert alone.win_rate == pytest.approx(1 - rates.win_rate)
    assert alone.ci_high == pytest.approx(1 - rates.ci_low)


def test_label_studio_ratings_are_read_with_every_skip_counted():
    plan = {"design": "rating", "tasks": [
        {"task": "r1", "image_id": "i1", "system": "gold", "caption": "a"},
        {"task": "r2", "image_id": "i1", "system": "oof", "caption": "b"}]}

    def answer(stars, email="a@x.org"):
        result = [] if stars is None else [{"from_name": "rating", "to_name": "caption",
                                            "type": "rating", "value": {"rating": stars}}]
        return {"completed_by": {"email": email}, "lead_time": 4.0, "result": result}

    export = [{"data": {TASK_KEY: "r1"}, "annotations": [answer(4), answer(2, "b@x.org")]},
              {"data": {TASK_KEY: "r2"}, "annotations": [answer(None), answer(7), answer(5)]}]
    rated, counts = read_judgments(export, plan, "export.json")
    assert counts == {"read": 5, "kept": 3, "skipped": {
        "no rating given": 1, "rating not a whole number from 1 to 5": 1}}
    assert rated[["task", "judge", "system", "rating"]].values.tolist() == [
        ["r1", "a@x.org", "gold", 4], ["r1", "b@x.org", "gold", 2], ["r2", "a@x.org", "oof", 5]]
    means = ratings.rating_means(rated, n_boot=0).set_index("system")["mean"]
    assert means.to_dict() == {"oof": 5.0, "gold": 3.0}
    with pytest.raises(Exception, match="row 0: rating 6"):
        ratings.check_ratings(rated.assign(rating=6))


def test_verdict_sentences_say_who_people_prefer_or_that_they_cannot_tell():
    rates = pd.DataFrame([
        {"a": "gold", "b": "oof", "judgments": 90, "images": 30, "win_rate": 0.7,
         "ci_low": 0.6, "ci_high": 0.8},
        {"a": "baseline", "b": "gold", "judgments": 90, "images": 30, "win_rate": 0.3,
         "ci_low": 0.2, "ci_high": 0.4},
        {"a": "human", "b": "oof", "judgments": 90, "images": 30, "win_rate": 0.55,
         "ci_low": 0.45, "ci_high": 0.65}])
    lines = analysis.verdict_lines(rates)
    assert lines[0].startswith("People prefer gold over oof: win rate 0.70 [0.60, 0.80]")
    assert lines[1].startswith("People prefer gold over baseline")
    assert lines[2].startswith("People cannot tell human and oof apart")
    differences = pd.DataFrame([{"a": "gold", "b": "oof", "images": 40, "difference": -0.5,
                                 "ci_low": -0.8, "ci_high": -0.2}])
    assert ratings.rating_verdict_lines(differences) == [
        "People rate oof above gold: gold minus oof -0.50 points [-0.80, -0.20] on 40 images."]
