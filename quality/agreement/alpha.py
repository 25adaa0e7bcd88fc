"""Krippendorff's alpha on long-format ratings (unit, coder, value), for any distance.

Alpha = 1 - D_o / D_e. The observed disagreement D_o is summed over the pairable value pairs
*within* each unit (memory grows with the sum of m_u^2, not units x values^2 as in the
`krippendorff` package). The expected disagreement D_e comes from the value totals for the
standard levels (nominal, ordinal, interval, ratio), and from all pairs of pairable values, or a
seeded random sample of them when there are too many, for a custom distance (1 - IoU, 1 - chrF).
Confidence intervals resample units (percentile bootstrap) with D_e held fixed, as in Hayes &
Krippendorff (2007).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from annotate.runtime.errors import UserError
from annotate.stats.bootstrap import draws, percentile_interval

#: A vectorised distance: values gathered for the left and right item of each pair -> delta >= 0.
Distance = Callable[[np.ndarray, np.ndarray], np.ndarray]
LEVELS = ("nominal", "ordinal", "interval", "ratio")

#: Above this many pairable values, D_e of a custom distance is estimated from sampled pairs.
EXACT_EXPECTED_LIMIT = 2000
#: Above units x resamples, bootstrap sums are drawn from their normal limit (see `_bootstrap`).
BOOTSTRAP_EXACT_LIMIT = 20_000_000


#: Below this many pairable units, or with an interval wider than this, an alpha carries a
#: warning: it cannot be read on the usual 0.667 / 0.8 scale without its interval.
FEW_UNITS = 50
WIDE_INTERVAL = 0.2


@dataclass(frozen=True)
class Alpha:
    """One alpha with its interval and the data it rests on."""

    alpha: float
    ci_low: float
    ci_high: float
    n_units: int
    n_values: int
    observed: float
    expected: float
    level: str
    #: Pairs behind D_e: None when exact (all pairs or value totals), else the sample size.
    expected_pairs: int | None = None
    #: Per pairable unit: unit, n_values, disagreement (mean distance over its value pairs).
    units: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False, compare=False)
    #: Per coder: coder, n_pairs, disagreement (mean distance to the others in shared units).
    coders: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False, compare=False)
    #: What the interval resamples: {"unit": "unit" or the group name, "count", "n_boot"}.
    resampled: dict = field(default_factory=dict)

    @property
    def warning(self) -> str | None:
        """Why this alpha is not to be read alone (few units, a wide or missing interval)."""
        if self.n_units < FEW_UNITS:
            return f"rests on {self.n_units} units (< {FEW_UNITS}): read it with its interval"
        width = self.ci_high - self.ci_low
        if not np.isfinite(width):
            return "no interval (no resampling, or too little data to resample)"
        if width > WIDE_INTERVAL:
            return f"interval {width:.2f} wide: the data cannot place alpha more precisely"
        return None

    def to_dict(self) -> dict:
        """The figures as plain JSON-ready values (NaN becomes None)."""
        out = {"alpha": self.alpha, "ci_low": self.ci_low, "ci_high": self.ci_high,
               "n_units": self.n_units, "n_values": self.n_values, "observed": self.observed,
               "expected": self.expected, "level": self.level,
               "expected_pairs": self.expected_pairs, "resampled": self.resampled,
               "warning": self.warning}
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                for k, v in out.items()}


def pairs_within(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All index pairs (i, j), i < j, of items that share a group; vectorised, O(sum m^2).

    `groups` holds one integer group code per item, in any order.
    """
    groups = np.asarray(groups)
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    n = len(groups)
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    sizes = np.diff(np.r_[starts, n])
    ends = np.repeat(starts + sizes, sizes)  # one past the group's last position, per position
    partners = ends - np.arange(n) - 1  # positions after me in my group
    left = np.repeat(np.arange(n), partners)
    offsets = np.repeat(np.cumsum(partners) - partners, partners)
    right = left + 1 + (np.arange(len(left)) - offsets)
    return order[left], order[right]


def alpha(units, values, level: str | Distance = "nominal", *, coders=None, groups=None,
          group_name: str = "group", n_boot: int = 1000, confidence: float = 0.95,
          seed: int = 0, exact_limit: int = EXACT_EXPECTED_LIMIT,
          expected_pairs: int = 200_000) -> Alpha:
    """Krippendorff's alpha from long-format ratings, with a bootstrap interval.

    Parameters
    ----------
    units, values : array-like
        Parallel sequences, one entry per rating: which unit was rated and the value given.
        Missing values (NaN/None) and units with fewer than two values are not pairable and
        are dropped. `values` may be 2-D (one row per rating, e.g. boxes) for a custom
        distance.
    level : {"nominal", "ordinal", "interval", "ratio"} or callable
        The level of measurement, or a vectorised distance over gathered values.
    coders : array-like, optional
        Who gave each rating: a coder rating one unit twice is an error, and the result
        carries per-coder disagreement.
    groups : array-like, optional
        Parallel to `units` (e.g. each rating's image): the interval resamples whole groups,
        since units that share an image are not independent.
    group_name : str
        What a group is, for the result's `resampled` record.
    n_boot : int
        Bootstrap resamples (0: no interval).
    confidence : float
        Coverage of the percentile interval.
    seed : int
        Seed of the resampling.
    exact_limit, expected_pairs : int
        Above `exact_limit` pairable values, D_e of a custom distance is estimated from
        `expected_pairs` sampled pairs.

    Returns
    -------
    Alpha
        `alpha`, `ci_low`, `ci_high`, `n_units`, `n_values`, what was resampled and, with
        `coders`, per-coder disagreement.

    Examples
    --------
    Krippendorff's (2011) worked example, 4 coders and 12 units with missing values, has the
    published nominal alpha 0.743 (as the `krippendorff` package's docstring reproduces):

    >>> nan = float("nan")
    >>> ratings = [[1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
    ...            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
    ...            [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
    ...            [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan]]
    >>> coders, units = np.nonzero(~np.isnan(ratings))
    >>> values = np.asarray(ratings)[coders, units]
    >>> round(alpha(units, values, "nominal", coders=coders).alpha, 3)
    0.743
    >>> round(alpha(units, values, "interval", coders=coders).alpha, 3)
    0.849
    """
    units = np.asarray(units)
    values = np.asarray(values) if not isinstance(values, np.ndarray) else values
    if len(units) != len(values):
        raise ValueError(f"units and values differ in length ({len(units)} vs {len(values)})")
    coder_codes = coder_names = None
    if coders is not None:
        coder_codes, coder_names = pd.factorize(np.asarray(coders), use_na_sentinel=True)
    keep = _present(values, level)
    group_of = None if groups is None else np.asarray(groups, dtype=object)[keep]
    unit_codes = pd.factorize(units[keep])[0]
    unit_names = units[keep]
    kept_values = values[keep]
    if coder_codes is not None:
        coder_codes = coder_codes[keep]
        _check_one_value_per_coder(unit_codes, coder_codes, unit_names, coder_names)
    sizes = np.bincount(unit_codes) if len(unit_codes) else np.zeros(0, np.int64)
    pairable = sizes[unit_codes] >= 2
    unit_codes, unit_names, kept_values = (unit_codes[pairable], unit_names[pairable],
                                           kept_values[pairable])
    if group_of is not None:
        group_of = group_of[pairable]
    if coder_codes is not None:
        coder_codes = coder_codes[pairable]
    unit_codes = np.unique(unit_codes, return_inverse=True)[1]  # dense again after the drops
    level_name = level if isinstance(level, str) else getattr(level, "__name__", "custom")
    n = len(kept_values)
    n_units = int(unit_codes.max() + 1) if n else 0
    if n_units == 0:
        nan = float("nan")
        return Alpha(nan, nan, nan, 0, 0, nan, nan, level_name)

    distance, values_for_pairs = _distance_for(level, kept_values)
    left, right = pairs_within(unit_codes)
    delta = distance(values_for_pairs[left], values_for_pairs[right]).astype(np.float64)
    m = np.bincount(unit_codes, minlength=n_units).astype(np.float64)
    unit_sum = np.bincount(unit_codes[left], weights=delta, minlength=n_units)
    unit_observed = 2 * unit_sum / (m - 1)  # sum over ordered pairs of delta / (m_u - 1)
    observed = unit_observed.sum() / n
    expected, sampled = _expected(level, values_for_pairs, distance, exact_limit,
                                  expected_pairs, seed)
    value = 1 - observed / expected if expected > 0 else float("nan")
    first = np.unique(unit_codes, return_index=True)[1]
    if group_of is None:
        low, high = _bootstrap(unit_observed, m, expected, n_boot, confidence, seed)
        resampled = {"unit": "unit", "count": n_units, "n_boot": n_boot}
    else:
        group_codes = pd.factorize(pd.Series(group_of[first], dtype=object))[0]
        n_groups = int(group_codes.max()) + 1
        low, high = _bootstrap(np.bincount(group_codes, unit_observed, n_groups),
                               np.bincount(group_codes, m, n_groups), expected, n_boot,
                               confidence, seed)
        resampled = {"unit": group_name, "count": n_groups, "n_boot": n_boot}

    unit_table = pd.DataFrame({"unit": unit_names[first], "n_values": m.astype(np.int64),
                               "disagreement": unit_observed / m})
    coder_table = pd.DataFrame()
    if coder_codes is not None:
        coder_table = _per_coder(coder_codes[left], coder_codes[right], delta, coder_names)
    return Alpha(float(value), low, high, n_units, n, float(observed), float(expected),
                 level_name, sampled, unit_table, coder_table, resampled)


#: Text that stands for a missing value when ratings arrive as strings (a NaN that went
#: through `str`, a CSV's empty cell): never a category of its own.
MISSING_TEXT = frozenset({"", "nan", "none", "null", "na", "<na>", "nat"})


def _present(values: np.ndarray, level) -> np.ndarray:
    """Which ratings have a value: not NaN/None, and for text not a spelling of "missing"."""
    if values.ndim > 1:  # one row per rating: missing when every entry is missing
        if values.dtype.kind == "f":
            return ~np.isnan(values).all(axis=1)
        return np.ones(len(values), bool)
    if values.dtype.kind not in "fOUSM":
        return np.ones(len(values), bool)
    present = ~pd.isna(values)
    if values.dtype.kind in "OUS":
        text = pd.Series(values, dtype=object).map(
            lambda v: isinstance(v, str | bytes) and (
                v.decode(errors="replace") if isinstance(v, bytes) else v).strip().lower()
            in MISSING_TEXT).to_numpy(bool)
        present &= ~text
    return present


def _check_one_value_per_coder(unit_codes, coder_codes, unit_names, coder_names) -> None:
    key = pd.DataFrame({"u": unit_codes, "c": coder_codes})
    dup = key.duplicated(keep=False).to_numpy() & (coder_codes >= 0)
    if dup.any():
        at = np.flatnonzero(dup)[0]
        raise UserError(f"coder {str(coder_names[coder_codes[at]])!r} rated unit "
                         f"{str(unit_names[at])!r} more than once ({int(dup.sum())} such ratings); "
                         "alpha needs at most one value per coder and unit")


def _distance_for(level, values: np.ndarray) -> tuple[Distance, np.ndarray]:
    """The distance to apply to pairs, and the values it reads (codes or numbers)."""
    if callable(level):
        return level, values
    if level == "nominal":
        codes = pd.factorize(values)[0]
        return (lambda a, b: (a != b).astype(np.float64)), codes
    numbers = values.astype(np.float64)
    if level == "interval":
        return (lambda a, b: (a - b) ** 2), numbers
    if level == "ordinal":  # interval distance on mid-ranks of the pairable values' totals
        _, inverse, counts = np.unique(numbers, return_inverse=True, return_counts=True)
        mid_rank = np.cumsum(counts) - counts / 2.0
        return (lambda a, b: (a - b) ** 2), mid_rank[inverse]
    if level == "ratio":
        def ratio(a, b):
            total = a + b
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(total == 0, 0.0, ((a - b) / np.where(total == 0, 1, total)) ** 2)
        return ratio, numbers
    raise UserError(f"unknown level {level!r}: use one of {LEVELS} or a distance function")


def _expected(level, values: np.ndarray, distance: Distance, exact_limit: int, n_pairs: int,
              seed: int) -> tuple[float, int | None]:
    """D_e = mean distance over all ordered pairs of distinct pairable values."""
    n = len(values)
    if level == "nominal":
        counts = np.bincount(values).astype(np.float64)
        return (n * n - (counts ** 2).sum()) / (n * (n - 1)), None
    if level in ("interval", "ordinal"):
        total, squares = values.sum(), (values ** 2).sum()
        return (2 * n * squares - 2 * total * total) / (n * (n - 1)), None
    if level == "ratio":
        domain, counts = np.unique(values, return_counts=True)
        total = 0.0
        for start in range(0, len(domain), 2048):  # blocked V x V: values x their totals
            block = slice(start, start + 2048)
            delta = distance(domain[block, None], domain[None, :])
            total += counts[block] @ delta @ counts
        return total / (n * (n - 1)), None
    if n <= exact_limit:  # every unordered pair once, in blocks of rows
        rows, cols = np.triu_indices(n, 1)
        block = 1 << 20
        total = sum(distance(values[rows[k:k + block]], values[cols[k:k + block]]).sum()
                    for k in range(0, len(rows), block))
        return 2 * total / (n * (n - 1)), None
    rng = np.random.default_rng(seed)
    left = rng.integers(0, n, n_pairs)
    right = (left + rng.integers(1, n, n_pairs)) % n  # uniform over the other n - 1 values
    return float(distance(values[left], values[right]).mean()), n_pairs


def _bootstrap(unit_observed: np.ndarray, m: np.ndarray, expected: float, n_boot: int,
               confidence: float, seed: int) -> tuple[float, float]:
    """Percentile interval of alpha over units resampled with replacement (D_e fixed).

    With many units the resampled sums (of D_o numerators and of pairable values) are drawn
    from their bivariate normal limit instead: the same distribution to O(1/sqrt(units)),
    without units x resamples random draws.
    """
    n_units = len(m)
    if n_boot <= 0 or n_units < 2 or not expected > 0:
        return float("nan"), float("nan")
    if n_units * n_boot <= BOOTSTRAP_EXACT_LIMIT:
        picked = draws(n_units, n_boot, seed + 1)
        sums = np.stack([unit_observed[picked].sum(axis=1), m[picked].sum(axis=1)], axis=1)
    else:
        both = np.stack([unit_observed, m], axis=1)
        sums = np.random.default_rng(seed + 1).multivariate_normal(
            n_units * both.mean(axis=0), n_units * np.cov(both, rowvar=False), n_boot)
    alphas = 1 - (sums[:, 0] / sums[:, 1]) / expected
    low, high = percentile_interval(alphas, confidence)
    return low, min(high, 1.0)


def _per_coder(left_coder: np.ndarray, right_coder: np.ndarray, delta: np.ndarray,
               names) -> pd.DataFrame:
    coders = np.r_[left_coder, right_coder]
    both = np.r_[delta, delta]
    ok = coders >= 0
    frame = pd.DataFrame({"coder": coders[ok], "delta": both[ok]})
    stats = frame.groupby("coder").delta.agg(["size", "mean"])
    return pd.DataFrame({"coder": np.asarray(names)[stats.index.to_numpy()],
                         "n_pairs": stats["size"].to_numpy(),
                         "disagreement": stats["mean"].to_numpy()})
