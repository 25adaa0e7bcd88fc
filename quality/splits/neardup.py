"""Exact search for pairs of 64-bit hashes within a Hamming distance, without comparing all
pairs: multi-index hashing.

Split the 64 bits into m chunks. If two hashes differ in at most t bits, some chunk differs in
at most floor(t / m) bits (pigeonhole), so every pair within t shares a chunk value up to a
flip of floor(t / m) bits. We look each hash's chunk variants up in a table of all hashes'
chunk values, then check the full distance of the few candidates found. m is chosen from a
cost model; the result is exact (a test compares it with brute force).
"""

from __future__ import annotations

import itertools
from math import comb

import numpy as np

from annotate.runtime.errors import UserError

BITS = 64
MAX_TABLE_BITS = 24  # dense lookup tables up to 2^24 entries (64 MB of int32)
QUERY_BLOCK = 1 << 24  # variant lookups per vectorised step


def hamming_pairs(hashes: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
    """All pairs (i < j) with popcount(hashes[i] ^ hashes[j]) <= max_distance, and distances."""
    hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
    if not 0 <= max_distance < BITS:
        raise UserError(f"max_distance must be in [0, {BITS}), got {max_distance}")
    n = len(hashes)
    if n < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64)
    chunks = _best_chunking(n, max_distance)
    radius = max_distance // len(chunks)
    found = []
    for start, width in chunks:
        values = ((hashes >> np.uint64(start)) & np.uint64((1 << width) - 1)).astype(np.int64)
        order = np.argsort(values, kind="stable")
        counts = np.bincount(values, minlength=1 << width)
        first = np.cumsum(counts) - counts
        masks = _masks(width, radius)
        per_step = max(1, QUERY_BLOCK // n)
        for k in range(0, len(masks), per_step):
            query = (values[:, None] ^ masks[None, k:k + per_step]).ravel()
            owner = np.repeat(np.arange(n), len(masks[k:k + per_step]))
            hits = counts[query]
            keep = hits > 0
            query, owner, hits = query[keep], owner[keep], hits[keep]
            offsets = np.repeat(first[query] - np.cumsum(hits) + hits, hits)
            partner = order[offsets + np.arange(hits.sum())]
            owner = np.repeat(owner, hits)
            left, right = np.minimum(owner, partner), np.maximum(owner, partner)
            distinct = left < right
            found.append(left[distinct] * n + right[distinct])
    keys = np.unique(np.concatenate(found)) if found else np.empty(0, np.int64)
    left, right = keys // n, keys % n
    distance = np.bitwise_count(hashes[left] ^ hashes[right]).astype(np.int64)
    close = distance <= max_distance
    return left[close], right[close], distance[close]


def hamming_pairs_brute(hashes: np.ndarray, max_distance: int, block: int = 2048
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same pairs by comparing all pairs in blocks (the reference, and for tiny inputs)."""
    hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
    out_left, out_right = [], []
    for start in range(0, len(hashes), block):
        distance = np.bitwise_count(hashes[start:start + block, None] ^ hashes[None, :])
        rows, cols = np.nonzero(distance <= max_distance)
        rows = rows + start
        keep = cols > rows
        out_left.append(rows[keep])
        out_right.append(cols[keep])
    left = np.concatenate(out_left) if out_left else np.empty(0, np.int64)
    right = np.concatenate(out_right) if out_right else np.empty(0, np.int64)
    return left, right, np.bitwise_count(hashes[left] ^ hashes[right]).astype(np.int64)


def _best_chunking(n: int, t: int) -> list[tuple[int, int]]:
    """(start bit, width) of each chunk, for the number of chunks with the least expected work:
    variant lookups plus candidate pairs to verify (assuming spread-out hashes)."""
    best, best_cost = None, np.inf
    for m in range(max(1, -(-BITS // MAX_TABLE_BITS)), BITS + 1):
        widths = [BITS // m + (1 if k < BITS % m else 0) for k in range(m)]
        radius = t // m
        variants = sum(sum(comb(w, r) for r in range(radius + 1)) for w in widths)
        candidates = n * sum(n * sum(comb(w, r) for r in range(radius + 1)) / 2 ** w
                             for w in widths)
        cost = n * variants + 4 * candidates + m * 2 ** max(widths) / 8
        if cost < best_cost:
            starts = np.cumsum([0, *widths[:-1]])
            best, best_cost = list(zip(starts.tolist(), widths, strict=True)), cost
    return best


def _masks(width: int, radius: int) -> np.ndarray:
    """Every `width`-bit pattern with at most `radius` bits set."""
    masks = [0]
    for r in range(1, radius + 1):
        masks += [sum(1 << b for b in bits) for bits in itertools.combinations(range(width), r)]
    return np.asarray(masks, np.int64)
