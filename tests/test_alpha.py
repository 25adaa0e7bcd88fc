"""Krippendorff's alpha on long-format ratings: published known answers, the `krippendorff`
package on random data, custom distances against a brute-force coincidence computation."""

from __future__ import annotations

import itertools

import krippendorff
import numpy as np
import pytest

from quality.agreement import alpha as alpha_module
from quality.agreement.alpha import alpha, pairs_within

NAN = np.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 coders x 12
# units with missing values. Published: nominal 0.743, ordinal 0.815, interval 0.849, ratio 0.797.
KRIPPENDORFF_2011 = np.array([
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
])
PUBLISHED = {"nominal": 0.743, "ordinal": 0.815, "interval": 0.849, "ratio": 0.797}


def long_format(matrix: np.ndarray):
    coder, unit = np.nonzero(~np.isnan(matrix))
    return unit, coder, matrix[coder, unit]


@pytest.mark.parametrize("level", list(PUBLISHED))
def test_krippendorff_worked_example(level):
    unit, coder, value = long_format(KRIPPENDORFF_2011)
    result = alpha(unit, value, level, coders=coder)
    assert round(result.alpha, 3) == PUBLISHED[level]
    assert result.alpha == pytest.approx(
        krippendorff.alpha(KRIPPENDORFF_2011, level_of_measurement=level), abs=1e-12)
    assert result.n_units == 11 and result.n_values == 40  # unit 12 has one value: not pairable
    assert result.ci_low <= result.alpha <= result.ci_high


def test_agrees_with_the_package_on_random_data():
    rng = np.random.default_rng(7)
    for _ in range(40):
        coders, units, values = rng.integers(2, 9), rng.integers(2, 80), rng.integers(2, 15)
        matrix = rng.integers(1, values + 1, (coders, units)).astype(float)
        matrix[rng.random(matrix.shape) < rng.uniform(0, 0.5)] = NAN
        unit, _coder, value = long_format(matrix)
        for level in PUBLISHED:
            try:
                expected = krippendorff.alpha(matrix, level_of_measurement=level)
            except ValueError:  # the package refuses data with one value or no pairable unit
                continue
            assert alpha(unit, value, level, n_boot=0).alpha == pytest.approx(
                expected, abs=1e-10, nan_ok=True), (level, matrix)


def brute_force_alpha(unit, value, distance) -> float:
    """Textbook coincidence computation: every ordered pair of pairable values."""
    unit, value = np.asarray(unit), np.asarray(value)
    sizes = {u: (unit == u).sum() for u in set(unit.tolist())}
    keep = np.array([sizes[u] >= 2 for u in unit])
    unit, value = unit[keep], value[keep]
    n = len(value)
    observed = sum(distance(value[i], value[j]) / (sizes[unit[i]] - 1)
                   for i, j in itertools.permutations(range(n), 2) if unit[i] == unit[j]) / n
    expected = sum(distance(value[i], value[j])
                   for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    return 1 - observed / expected


def test_custom_distance_equals_brute_force_and_nominal():
    rng = np.random.default_rng(3)
    unit = rng.integers(0, 15, 60)
    value = rng.uniform(0, 10, 60)
    absolute = lambda a, b: np.abs(a - b)  # noqa: E731 - a metric the package has no name for
    result = alpha(unit, value, absolute, n_boot=0)
    assert result.expected_pairs is None
    assert result.alpha == pytest.approx(
        brute_force_alpha(unit, value, lambda a, b: abs(a - b)), abs=1e-12)
    labels = rng.integers(0, 4, 60)
    as_custom = alpha(unit, labels, lambda a, b: (a != b).astype(float), n_boot=0)
    assert as_custom.alpha == pytest.approx(alpha(unit, labels, "nominal", n_boot=0).alpha)


def test_sampled_expected_disagreement_is_close_and_says_so():
    rng = np.random.default_rng(5)
    unit = rng.integers(0, 800, 3000)
    value = rng.normal(unit % 7, 1.0)
    squared = lambda a, b: (a - b) ** 2  # noqa: E731
    exact = alpha(unit, value, "interval", n_boot=0)
    sampled = alpha(unit, value, squared, n_boot=0, exact_limit=1000, expected_pairs=400_000)
    assert sampled.expected_pairs == 400_000
    assert sampled.alpha == pytest.approx(exact.alpha, abs=0.01)
    assert sampled.observed == pytest.approx(exact.observed)


def test_pairs_within_lists_every_same_group_pair_once():
    groups = np.array([3, 1, 3, 2, 1, 3, 7])
    left, right = pairs_within(groups)
    found = {tuple(sorted(p)) for p in zip(left.tolist(), right.tolist(), strict=True)}
    expected = {(i, j) for i, j in itertools.combinations(range(len(groups)), 2)
                if groups[i] == groups[j]}
    assert found == expected and len(left) == len(expected)


def test_coder_rating_a_unit_twice_is_an_error():
    with pytest.raises(ValueError, match="coder 'ann' rated unit 'u1' more than once"):
        alpha(["u1", "u1", "u1"], [1, 2, 1], coders=["ann", "ann", "bob"])


def test_no_pairable_unit_and_no_variation_give_nan():
    assert np.isnan(alpha(["a", "b"], [1, 2]).alpha)
    constant = alpha(["a", "a", "b", "b"], [1, 1, 1, 1])
    assert np.isnan(constant.alpha) and constant.n_units == 2


def test_missing_values_are_not_pairable():
    with_gaps = alpha(["a", "a", "a", "b", "b"], ["x", "x", None, "y", "x"])
    assert with_gaps.n_values == 4


def test_per_coder_and_per_unit_disagreement():
    unit, coder, value = long_format(KRIPPENDORFF_2011)
    result = alpha(unit, value, "nominal", coders=np.array(list("ABCD"))[coder])
    table = result.coders.set_index("coder")
    # Coder C disagrees most in the worked example (units 2, 6 and 8).
    assert table.disagreement.idxmax() == "C"
    worst = result.units.sort_values("disagreement").iloc[-1]
    assert worst.unit == 5 and worst.n_values == 4  # unit 6: values 1, 2, 3, 4


def test_normal_limit_bootstrap_matches_resampling(monkeypatch):
    rng = np.random.default_rng(11)
    unit = np.repeat(np.arange(3000), 3)
    value = np.where(rng.random(9000) < 0.8, unit % 4, rng.integers(0, 4, 9000))
    exact = alpha(unit, value, "nominal", n_boot=400, seed=1)
    monkeypatch.setattr(alpha_module, "BOOTSTRAP_EXACT_LIMIT", 0)
    normal = alpha(unit, value, "nominal", n_boot=400, seed=1)
    assert normal.alpha == exact.alpha
    width_exact, width_normal = exact.ci_high - exact.ci_low, normal.ci_high - normal.ci_low
    assert width_normal == pytest.approx(width_exact, rel=0.2)
    assert normal.ci_low < normal.alpha < normal.ci_high


def test_to_dict_is_json_ready():
    result = alpha(["a", "b"], [1, 2]).to_dict()
    assert result["alpha"] is None and result["n_units"] == 0


def _simulate(rng, accuracy, units_per_image, images, coders=3, categories=4):
    """Nominal ratings: each coder reports a unit's true category with the image's accuracy
    q, else a uniform random one. Population alpha = E[q^2] (uniform marginals)."""
    q = np.repeat(accuracy(rng, images), units_per_image)
    n = len(q)
    true = rng.integers(0, categories, n)
    correct = rng.random((n, coders)) < q[:, None]
    values = np.where(correct, true[:, None], rng.integers(0, categories, (n, coders)))
    units = np.repeat(np.arange(n), coders)
    image = np.repeat(np.repeat(np.arange(images), units_per_image), coders)
    return units, values.ravel(), image


def test_intervals_cover_the_population_alpha():
    """400 samples from a known population: the 95% interval covers alpha in 92-98% of them
    (binomial sd at 400 repeats is 1.1 points). Units that share an image (here the image sets
    the coders' accuracy) need the image resampled: resampling units then covers far less."""
    rng = np.random.default_rng(0)
    hits = 0
    for r in range(400):
        units, values, _ = _simulate(rng, lambda g, n: np.full(n, 0.8), 1, 150)
        a = alpha(units, values, "nominal", n_boot=400, seed=r)
        hits += a.ci_low <= 0.8 ** 2 <= a.ci_high
    assert 0.92 <= hits / 400 <= 0.98

    truth = (0.5 ** 2 + 1.0 ** 2) / 2
    by_image = by_unit = 0
    for r in range(400):
        units, values, image = _simulate(rng, lambda g, n: g.choice([0.5, 1.0], n), 4, 60)
        grouped = alpha(units, values, "nominal", groups=image, n_boot=400, seed=r)
        plain = alpha(units, values, "nominal", n_boot=400, seed=r)
        by_image += grouped.ci_low <= truth <= grouped.ci_high
        by_unit += plain.ci_low <= truth <= plain.ci_high
    assert 0.92 <= by_image / 400 <= 0.98 and by_unit / 400 < 0.85


def test_an_alpha_on_few_units_or_a_wide_interval_carries_a_warning():
    from quality.agreement.alpha import FEW_UNITS

    rng = np.random.default_rng(0)
    unit = np.repeat(np.arange(20), 2)
    value = rng.integers(0, 3, 40)
    few = alpha(unit, value, "nominal", n_boot=200)
    assert few.n_units < FEW_UNITS and "20 units" in few.to_dict()["warning"]
    unit = np.repeat(np.arange(400), 2)
    truth = rng.integers(0, 3, 400)
    value = np.repeat(truth, 2)
    value[::7] = rng.integers(0, 3, len(value[::7]))
    many = alpha(unit, value, "nominal", n_boot=200)
    assert many.ci_high - many.ci_low < 0.2 and many.to_dict()["warning"] is None
    assert "no interval" in alpha(unit, value, "nominal", n_boot=0).to_dict()["warning"]


def test_the_text_nan_is_missing_not_a_category():
    """Ratings that arrive as text (a NaN through `str`, an empty CSV cell) keep their
    missing values missing: Krippendorff's example still gives the published 0.743."""
    unit, coder, value = long_format(KRIPPENDORFF_2011)
    as_text = np.array([str(int(v)) for v in value], dtype=object)
    grid = np.full(KRIPPENDORFF_2011.shape, "nan", dtype=object)
    grid[coder, unit] = as_text
    rows, cols = np.indices(grid.shape)
    result = alpha(cols.ravel(), grid.ravel().astype(str), "nominal", coders=rows.ravel())
    assert round(result.alpha, 3) == 0.743 and result.n_values == 40
    blank = np.where(grid == "nan", "", grid).ravel()
    assert round(alpha(cols.ravel(), blank, "nominal", coders=rows.ravel()).alpha, 3) == 0.743


def _hughes(realdata) -> dict:
    import json

    return {case["id"]: case for case in json.loads(
        (realdata / "krippendorff_ci" / "published_values.json").read_text())["cases"]}


@pytest.mark.parametrize(("case", "level"), [
    ("cartilage_interval_323x2", "interval"),
    ("cartilage_L1_distance", lambda a, b: np.abs(a - b)),  # the vignette's absolute distance
])
def test_hughes_published_intervals_on_the_cartilage_data(realdata, case, level):
    """krippendorffsalpha (Hughes, The R Journal 2021) on 323 units x 2 coders: the same alpha
    to 4 digits and the published 95% interval within Monte-Carlo error (units resampled,
    D_e fixed, 10,000 resamples: about 0.005)."""
    import pandas as pd

    published = _hughes(realdata)[case]["published"]
    table = pd.read_csv(realdata / "krippendorff_ci" / "hughes_cartilage_323x2.csv")
    units = np.tile(np.arange(len(table)), 2)
    values = np.r_[table["pre"].to_numpy(), table["post"].to_numpy()]
    result = alpha(units, values, level, n_boot=10_000, seed=12)
    assert round(result.alpha, 4) == published["alpha"]
    assert result.ci_low == pytest.approx(published["ci95"][0], abs=0.005)
    assert result.ci_high == pytest.approx(published["ci95"][1], abs=0.005)


def test_hughes_published_interval_reaches_one_on_the_textbook_example(realdata):
    """Krippendorff's 4 coders x 12 units, nominal: alpha 0.743 and the vignette's interval
    [0.4644, 1] (1,000 resamples): the upper limit is exactly 1, reached, not clipped."""
    case = _hughes(realdata)["krippendorff_4x12_nominal"]
    grid = np.array(case["data_units_by_coders"], dtype=float)
    units, coders = np.nonzero(~np.isnan(grid))
    result = alpha(units, grid[units, coders], "nominal", coders=coders, n_boot=1000, seed=42)
    published = case["published"][0]
    # 0.743 in the package's tests and Krippendorff's own; the vignette prints 0.7429
    assert round(result.alpha, 3) == case["published"][1]["alpha"] == 0.743
    assert result.alpha == pytest.approx(published["alpha"], abs=6e-4)
    assert result.ci_high == 1.0
    assert result.ci_low == pytest.approx(published["ci95"][0], abs=0.03)  # 1,000 resamples
