"""The percentile bootstrap every interval in the project uses.

`draws` resamples independent units with replacement: which units those are is the caller's
statement (images for caption scores and gold-vs-predicted drops, alpha's units or images for
alpha), and the caller records it beside every interval it produces (a `resampled` entry in
the JSON: unit, count, n_boot), so that an interval always says what it resampled.
"""

from __future__ import annotations

import numpy as np


def draws(n_units: int, n_boot: int, seed: int = 0, size: int | None = None) -> np.ndarray:
    """Bootstrap resamples as index arrays.

    Parameters
    ----------
    n_units : int
        How many independent units there are.
    n_boot : int
        How many resamples.
    seed : int
        Seed of the generator (`numpy.random.default_rng`): the same seed gives the same draws.
    size : int, optional
        Units per resample (default: `n_units`).

    Returns
    -------
    numpy.ndarray
        Shape (n_boot, size): indices into the units, drawn with replacement; empty when there
        are no units or no resamples.

    Examples
    --------
    >>> draws(3, 2, seed=0).shape
    (2, 3)
    >>> draws(0, 5).shape
    (0, 0)
    """
    rng = np.random.default_rng(seed)
    if n_units < 1 or n_boot < 1:
        return np.zeros((0, size or max(n_units, 0)), dtype=np.int64)
    return rng.integers(0, n_units, (n_boot, size or n_units))


def percentile_interval(replicates, confidence: float = 0.95) -> tuple[float, float]:
    """The central percentile interval of bootstrap replicates.

    Parameters
    ----------
    replicates : array-like
        The statistic in each resample; non-finite replicates are left out.
    confidence : float
        The interval's nominal coverage.

    Returns
    -------
    tuple of float
        (low, high); (nan, nan) when there is no finite replicate.

    Examples
    --------
    >>> [round(bound, 6) for bound in percentile_interval(range(101))]
    [2.5, 97.5]
    """
    values = np.asarray(replicates, np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
