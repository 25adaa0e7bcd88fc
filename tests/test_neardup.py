"""Exact Hamming-radius search equals brute force."""

from __future__ import annotations

import numpy as np
import pytest

from quality.splits.neardup import _best_chunking, hamming_pairs, hamming_pairs_brute


def planted(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)
    hashes ^= rng.integers(0, 2, n).astype(np.uint64) << np.uint64(63)
    for source, target in zip(rng.integers(0, n, n // 10), rng.integers(0, n, n // 10),
                              strict=True):
        flips = rng.choice(64, rng.integers(0, 13), replace=False)
        hashes[target] = hashes[source] ^ np.uint64(sum(1 << int(b) for b in flips))
    return hashes


@pytest.mark.parametrize("radius", [0, 1, 3, 6, 8, 11])
def test_same_pairs_as_brute_force(radius):
    hashes = planted(3000, seed=radius)
    got = hamming_pairs(hashes, radius)
    want = hamming_pairs_brute(hashes, radius)
    assert set(zip(*map(np.ndarray.tolist, got), strict=True)) == set(
        zip(*map(np.ndarray.tolist, want), strict=True))
    assert len(got[0]) == len(want[0]) > 0


def test_chunking_covers_all_bits_and_edge_cases():
    for t in (0, 4, 8, 16):
        chunks = _best_chunking(100_000, t)
        assert sum(width for _, width in chunks) == 64
    assert [len(x) for x in hamming_pairs(np.array([5], np.uint64), 3)] == [0, 0, 0]
    with pytest.raises(ValueError, match="max_distance"):
        hamming_pairs(np.zeros(3, np.uint64), 64)
