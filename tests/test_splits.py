"""Group-aware stratified splits: groups never straddle, sizes as asked, balanced, seeded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from annotate.formats.ls_import import import_export
from annotate.tables.schema import TableSet
from quality.splits.partition import fold_set, group_codes, split_report, split_set, stratify
from tests.conftest import REPO


@pytest.fixture(scope="module")
def demo() -> TableSet:
    return import_export(REPO / "data/demo/export.json")[0]


def skewed(seed: int = 0, n_groups: int = 3000, n_classes: int = 8):
    """Lognormal group sizes, Zipf-like classes, each group mostly one class."""
    rng = np.random.default_rng(seed)
    sizes = np.maximum(1, rng.lognormal(0.8, 1.0, n_groups).astype(int))
    groups = np.repeat(np.arange(n_groups), sizes)
    p = 1 / np.arange(1, n_classes + 1)
    p /= p.sum()
    dominant = rng.choice(n_classes, n_groups, p=p)
    y = np.where(rng.random(len(groups)) < 0.7, dominant[groups],
                 rng.choice(n_classes, len(groups), p=p))
    features = sparse.csr_matrix((np.ones(len(y)), (np.arange(len(y)), y)),
                                 shape=(len(y), n_classes))
    return groups, y, features


def test_groups_never_straddle_and_sizes_are_exact_on_skewed_groups():
    groups, _y, features = skewed()
    part = stratify(groups, features, [0.8, 0.1, 0.1], seed=1)
    assert pd.Series(part).groupby(groups).nunique().max() == 1
    shares = np.bincount(part, minlength=3) / len(part)
    np.testing.assert_allclose(shares, [0.8, 0.1, 0.1], atol=0.01)  # within 1 pp, in items
    assert np.abs(np.bincount(part) - np.array([0.8, 0.1, 0.1]) * len(part)).max() <= 1


def worst_share_deviation(folds: np.ndarray, y: np.ndarray) -> float:
    """Largest |share of a class in a fold - its overall share| (the benchmark's figure)."""
    overall = np.bincount(y) / len(y)
    return max(np.abs(np.bincount(y[folds == k], minlength=len(overall)) / (folds == k).sum()
                      - overall).max() for k in np.unique(folds))


def test_class_balance_no_worse_than_sklearn_on_most_sets():
    """Random grouped sets of the issue's kind (200-3,000 items, skewed groups mostly of one
    class; the benchmark's generator): our worst class-share deviation is no worse than
    StratifiedGroupKFold's in the median and in most sets (benchmarks/splits_scale.py runs 40)."""
    from sklearn.model_selection import StratifiedGroupKFold

    from benchmarks.splits_scale import random_set

    ours, theirs = [], []
    for seed in range(12):
        groups, y = random_set(seed)
        features = sparse.csr_matrix((np.ones(len(y)), (np.arange(len(y)), y)))
        ours.append(worst_share_deviation(stratify(groups, features, np.full(5, 0.2), seed), y))
        folds = np.empty(len(y), int)
        splitter = StratifiedGroupKFold(5, shuffle=True, random_state=seed)
        for k, (_, test) in enumerate(splitter.split(np.zeros(len(y)), y, groups)):
            folds[test] = k
        theirs.append(worst_share_deviation(folds, y))
    ours, theirs = np.array(ours), np.array(theirs)
    assert np.median(ours) <= np.median(theirs)
    assert (ours <= theirs + 1e-12).sum() > len(ours) / 2


@pytest.mark.parametrize("items, fractions, sizes", [
    (6, [0.25] * 4, [2, 2, 1, 1]), (10, [0.25] * 4, [3, 3, 2, 2]),
    (25, [0.8, 0.1, 0.1], [20, 3, 2]), (7, [0.5, 0.5], [4, 3]), (3, [0.2] * 5, None)])
def test_sizes_by_largest_remainder_and_never_an_empty_part(items, fractions, sizes):
    if sizes is None:  # fewer groups than parts: an error that says so
        with pytest.raises(ValueError, match=r"3 group.*5 parts"):
            stratify(np.arange(items), np.ones((items, 1)), fractions)
        return
    for seed in range(5):
        part = stratify(np.arange(items), np.ones((items, 1)), fractions, seed)
        assert np.bincount(part, minlength=len(fractions)).tolist() == sizes


def test_no_empty_part_while_there_are_enough_groups():
    rng = np.random.default_rng(0)
    for seed in range(30):
        k = int(rng.integers(2, 7))
        groups = rng.integers(0, k + int(rng.integers(0, 4)), int(rng.integers(k, 40)))
        if len(np.unique(groups)) < k:
            continue
        part = stratify(groups, np.eye(3)[rng.integers(0, 3, len(groups))], np.full(k, 1 / k),
                        seed)
        assert (np.bincount(part, minlength=k) > 0).all(), (seed, k)


def test_invariant_to_class_codes_and_row_order():
    groups, y, _ = skewed(seed=4, n_groups=400, n_classes=6)
    names = np.array([f"g{g}" for g in groups])

    def folds(groups, y):
        features = sparse.csr_matrix((np.ones(len(y)), (np.arange(len(y)), y)))
        return stratify(groups, features, [0.6, 0.2, 0.2], seed=7)

    reference = folds(names, y)
    relabelled = folds(names, np.random.default_rng(1).permutation(6)[y])
    assert np.array_equal(reference, relabelled)
    order = np.random.default_rng(2).permutation(len(y))
    shuffled = np.empty_like(reference)
    shuffled[order] = folds(names[order], y[order])
    assert np.array_equal(reference, shuffled)


def test_deterministic_per_seed_and_different_across_seeds():
    groups, _, features = skewed(n_groups=500)
    a = stratify(groups, features, [0.8, 0.1, 0.1], seed=3)
    assert np.array_equal(a, stratify(groups, features, [0.8, 0.1, 0.1], seed=3))
    assert not np.array_equal(a, stratify(groups, features, [0.8, 0.1, 0.1], seed=4))


def test_bad_fractions_are_rejected():
    with pytest.raises(ValueError, match="sum to 1"):
        stratify(np.arange(4), np.eye(4), [0.5, 0.2])
    with pytest.raises(ValueError, match="val \\+ test < 1"):
        split_set(TableSet(), 0.6, 0.5)


def test_demo_split_keeps_crops_and_copies_together(demo):
    result = split_set(demo, 0.1, 0.1, seed=0)
    images = result.images
    assert images.groupby("group_id").split.nunique().max() == 1
    assert images.groupby("sha256").split.nunique().max() == 1  # byte-identical copies
    assert images.split.value_counts().to_dict() == {"train": 160, "val": 20, "test": 20}
    report = split_report(result, asked={"train": 0.8, "val": 0.1, "test": 0.1})
    assert report.max_size_error_pp == 0
    assert set(report.table.index) == {"train", "val", "test"}
    assert report.table.objects.sum() > 0 and report.max_class_share_gap < 0.2
    assert result.meta["split"] == {"val": 0.1, "test": 0.1, "seed": 0}


def test_demo_folds(demo):
    result = fold_set(demo, 5)
    folds = result.images.fold
    assert folds.value_counts().tolist() == [40] * 5
    assert result.images.groupby("group_id").fold.nunique().max() == 1
    with pytest.raises(ValueError, match="folds must be >= 2"):
        fold_set(demo, 1)


def test_images_without_group_are_their_own_group():
    images = pd.DataFrame({"image_id": ["a", "b", "c"], "group_id": [None, "g", "g"],
                           "sha256": [None, None, None]})
    codes = group_codes(images)
    assert codes[1] == codes[2] != codes[0]


def test_the_order_of_the_images_table_does_not_change_the_split(demo):
    reference = split_set(demo, 0.2, 0.2, seed=3).images.set_index("image_id").split
    shuffled = demo.images.sample(frac=1, random_state=1).reset_index(drop=True)
    again = split_set(TableSet(shuffled, demo.annotations, demo.boxes, demo.captions,
                               demo.labels, demo.meta), 0.2, 0.2, seed=3)
    assert again.images.set_index("image_id").split.loc[reference.index].equals(reference)
