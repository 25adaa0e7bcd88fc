"""The percentile bootstrap every interval in the project uses.

`draws` resamples independent units with replacement: which units those are is the caller's
statement (images for caption scores and gold-vs-predicted drops, alpha's units for alpha) and
is recorded next to every interval it produces (`interval(..., unit=...)`).
"""

from __future__ import annotations

import numpy as np


def draws(n_units: int, n_boot: int, seed: int = 0, size: int | None = None) -> np.ndarray:
    """(n_boot, size) indices into `n_units` units drawn with replacement (size: n_units)."""
    rng = np.random.default_rng(seed)
    if n_units < 1 or n_boot < 1:
        return np.zeros((0, size or max(n_units, 0)), dtype=np.int64)
    return rng.integers(0, n_units, (n_boot, size or n_units))


def percentile_interval(replicates, confidence: float = 0.95) -> tuple[float, float]:
    """The central `confidence` interval of bootstrap replicates; NaN when there are none."""
    values = np.asarray(replicates, np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
