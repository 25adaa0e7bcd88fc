"""Splits and near-duplicate search at scale, each against its baseline, in one run:

1. stratified group 5-fold: ours vs scikit-learn's StratifiedGroupKFold (and GroupKFold for
   speed) on 300k rows / 60k groups / 30 classes, skewed group sizes and classes: time and
   the largest per-class share deviation of any fold;
2. the same balance figure on 40 small random grouped sets (200-3,000 items, `random_set`):
   median, and in how many sets ours is no worse;
3. near-duplicate search on 100k 64-bit hashes (with planted near copies) within Hamming
   distance 8: ours vs numpy brute force: time and whether the pairs are the same.

    uv run python benchmarks/splits_scale.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import sparse
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

from quality.splits.neardup import hamming_pairs, hamming_pairs_brute
from quality.splits.partition import stratify


def grouped_rows(n_rows: int, n_groups: int, n_classes: int, seed: int = 0):
    """Lognormal group sizes; Zipf-like classes; 70% of a group's rows share its class."""
    rng = np.random.default_rng(seed)
    weight = rng.lognormal(0, 1.0, n_groups)
    sizes = np.maximum(1, np.round(weight / weight.sum() * n_rows)).astype(int)
    groups = np.repeat(np.arange(n_groups), sizes)[:n_rows]
    if len(groups) < n_rows:
        groups = np.r_[groups, rng.integers(0, n_groups, n_rows - len(groups))]
    p = 1 / np.arange(1, n_classes + 1)
    p /= p.sum()
    dominant = rng.choice(n_classes, n_groups, p=p)
    y = np.where(rng.random(n_rows) < 0.7, dominant[groups], rng.choice(n_classes, n_rows, p=p))
    return groups, y


def random_set(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One of the issue's small random grouped sets: 200-3,000 items, 3-9 items per group on
    average, 3-11 classes (`grouped_rows`), class codes made dense."""
    rng = np.random.default_rng(1000 + seed)
    n_rows = int(rng.integers(200, 3001))
    n_groups = max(20, n_rows // int(rng.integers(3, 10)))
    groups, y = grouped_rows(n_rows, n_groups, int(rng.integers(3, 12)), seed=seed)
    return groups, np.unique(y, return_inverse=True)[1]


def small_set_figures(seed: int) -> tuple[float, float, float, float]:
    """Worst class-share deviation and fold size error (pp), ours then scikit-learn's."""
    groups, y = random_set(seed)
    features = sparse.csr_matrix((np.ones(len(y)), (np.arange(len(y)), y)))
    ours = fold_figures(stratify(groups, features, np.full(5, 0.2), seed=seed), y, 5)
    theirs = fold_figures(sklearn_folds(StratifiedGroupKFold(5, shuffle=True, random_state=seed),
                                        y, groups), y, 5)
    return ours[0], theirs[0], ours[1], theirs[1]


def fold_figures(folds: np.ndarray, y: np.ndarray, k: int) -> tuple[float, float]:
    """Largest |class share in a fold - overall share|, and largest fold size error in pp."""
    n_classes = int(y.max()) + 1
    overall = np.bincount(y, minlength=n_classes) / len(y)
    worst = max(np.abs(np.bincount(y[folds == f], minlength=n_classes) / (folds == f).sum()
                       - overall).max() for f in range(k))
    size_error = np.abs(np.bincount(folds, minlength=k) / len(y) - 1 / k).max() * 100
    return float(worst), float(size_error)


def sklearn_folds(splitter, y, groups) -> np.ndarray:
    folds = np.empty(len(y), int)
    for k, (_, test) in enumerate(splitter.split(np.zeros(len(y)), y, groups)):
        folds[test] = k
    return folds


def planted_hashes(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)
    hashes ^= rng.integers(0, 2, n).astype(np.uint64) << np.uint64(63)
    for source, target in zip(rng.integers(0, n, n // 50), rng.integers(0, n, n // 50),
                              strict=True):
        flips = rng.choice(64, rng.integers(0, 11), replace=False)
        hashes[target] = hashes[source] ^ np.uint64(sum(1 << int(b) for b in flips))
    return hashes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--groups", type=int, default=60_000)
    parser.add_argument("--classes", type=int, default=30)
    parser.add_argument("--sets", type=int, default=40)
    parser.add_argument("--hashes", type=int, default=100_000)
    parser.add_argument("--distance", type=int, default=8)
    args = parser.parse_args()

    groups, y = grouped_rows(args.rows, args.groups, args.classes)
    features = sparse.csr_matrix((np.ones(len(y)), (np.arange(len(y)), y)),
                                 shape=(len(y), args.classes))
    print(f"5-fold on {args.rows} rows / {args.groups} groups / {args.classes} classes:")
    runs = {}
    start = time.perf_counter()
    runs["ours (stratified, grouped)"] = stratify(groups, features, np.full(5, 0.2), seed=0)
    times = {"ours (stratified, grouped)": time.perf_counter() - start}
    for name, splitter in (("sklearn StratifiedGroupKFold",
                            StratifiedGroupKFold(5, shuffle=True, random_state=0)),
                           ("sklearn GroupKFold", GroupKFold(5))):
        start = time.perf_counter()
        runs[name] = sklearn_folds(splitter, y, groups)
        times[name] = time.perf_counter() - start
    for name, folds in runs.items():
        worst, size_error = fold_figures(folds, y, 5)
        print(f"  {name:30} {times[name]:7.2f} s   max class-share deviation {worst:.6f}   "
              f"max fold size error {size_error:.3f} pp")
    print(f"  speed-up over StratifiedGroupKFold: "
          f"{times['sklearn StratifiedGroupKFold'] / times['ours (stratified, grouped)']:.0f}x")

    small = np.array([small_set_figures(seed) for seed in range(args.sets)])
    print(f"5-fold on {args.sets} random sets of 200-3,000 items (max class-share deviation):")
    print(f"  median: ours {np.median(small[:, 0]):.4f}, StratifiedGroupKFold "
          f"{np.median(small[:, 1]):.4f}; ours no worse in {(small[:, 0] <= small[:, 1]).sum()} "
          f"of {len(small)}; max fold size error: ours {small[:, 2].max():.2f} pp, "
          f"StratifiedGroupKFold {small[:, 3].max():.2f} pp")

    hashes = planted_hashes(args.hashes)
    print(f"near duplicates among {args.hashes} 64-bit hashes, Hamming distance <= "
          f"{args.distance}:")
    start = time.perf_counter()
    ours = hamming_pairs(hashes, args.distance)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    brute = hamming_pairs_brute(hashes, args.distance)
    brute_s = time.perf_counter() - start
    same = set(zip(ours[0].tolist(), ours[1].tolist(), strict=True)) == set(
        zip(brute[0].tolist(), brute[1].tolist(), strict=True))
    print(f"  ours (multi-index hashing) {ours_s:7.2f} s   numpy brute force {brute_s:7.2f} s   "
          f"pairs {len(ours[0])} vs {len(brute[0])}, same: {same}   speed-up "
          f"{brute_s / ours_s:.0f}x")


if __name__ == "__main__":
    main()
