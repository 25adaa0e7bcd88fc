"""scikit-learn's public tests of its group splitters, ported onto `quality.splits.stratify`.

Source: scikit-learn 1.9, `sklearn/model_selection/tests/test_split.py` (BSD-3-Clause):
`test_stratified_group_kfold_trivial`, `..._approximate`, `..._homogeneous_groups`,
`..._shuffle_preserves_stratification`, `..._against_group_kfold`, `test_group_kfold`,
`test_shuffle_groupkfold`, `test_group_shuffle_split`, `test_group_shuffle_split_default_test_size`
and the fewer-groups-than-splits error. Where scikit-learn's test pins its own splitter's
imperfect answer (`..._approximate`: "not perfect stratification (even though it is possible)"),
the port asks for the perfect one, which `stratify` finds; the rest keep the original checks.
`stratify` counts sizes in items, so GroupShuffleSplit's group-count check becomes an item-count
one.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import sparse, stats
from sklearn.model_selection import GroupKFold

from annotate.runtime.errors import UserError
from quality.splits.partition import stratify


def kfold(y, groups, k: int, seed: int = 0) -> np.ndarray:
    """The fold of each item: `stratify` with the class of each item as its stratum."""
    y = np.asarray(y)
    classes = np.unique(y, return_inverse=True)[1]
    onehot = sparse.csr_matrix((np.ones(len(y)), (np.arange(len(y)), classes)))
    return stratify(np.asarray(groups), onehot, np.full(k, 1 / k), seed)


def assert_groups_whole(folds: np.ndarray, groups) -> None:
    groups = np.asarray(groups)
    for group in np.unique(groups):
        assert len(np.unique(folds[groups == group])) == 1, group


def test_stratified_group_kfold_trivial():
    y = np.array([1] * 6 + [0] * 12)
    groups = np.asarray((1, 2, 3, 4, 5, 6, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6))
    folds = kfold(y, groups, 3)
    assert_groups_whole(folds, groups)
    distr = np.bincount(y) / len(y)
    for fold in range(3):
        assert_allclose(np.bincount(y[folds == fold], minlength=2) / (folds == fold).sum(),
                        distr, atol=0.02)
        assert_allclose(np.bincount(y[folds != fold], minlength=2) / (folds != fold).sum(),
                        distr, atol=0.02)
    assert np.ptp(np.bincount(folds)) <= 1


def test_stratified_group_kfold_approximate_is_exact_here():
    # scikit-learn's splitter gives [0.833, 0.166], [0.666, 0.333], [0.5, 0.5] on this set;
    # {1, 2}, {3, 5}, {4, 6} stratify it perfectly and stratify finds that
    y = np.array([1] * 6 + [0] * 12)
    groups = np.array([1, 2, 3, 3, 4, 4, 1, 1, 2, 2, 3, 4, 5, 5, 5, 6, 6, 6])
    folds = kfold(y, groups, 3)
    assert_groups_whole(folds, groups)
    for fold in range(3):
        assert_allclose(np.bincount(y[folds == fold], minlength=2) / (folds == fold).sum(),
                        [2 / 3, 1 / 3], atol=1e-9)
    assert np.ptp(np.bincount(folds)) <= 1


@pytest.mark.parametrize("y, groups, expected", [
    (np.array([0] * 6 + [1] * 6), np.array([1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]), [0.5, 0.5]),
    (np.array([0] * 9 + [1] * 3), np.array([1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 5, 6]), [0.75, 0.25]),
])
def test_stratified_group_kfold_homogeneous_groups(y, groups, expected):
    folds = kfold(y, groups, 3)
    assert_groups_whole(folds, groups)
    for fold in range(3):
        assert_allclose(np.bincount(y[folds == fold], minlength=2) / (folds == fold).sum(),
                        expected, atol=0.001)


def test_stratified_group_kfold_shuffle_preserves_stratification():
    y = np.array([0] * 12 + [1] * 6)
    groups = np.array([1, 1, 3, 3, 3, 4, 5, 5, 5, 5, 7, 7, 2, 2, 6, 6, 8, 8])
    for seed in range(100):  # every seed finds the perfect stratification
        folds = kfold(y, groups, 3, seed)
        assert_groups_whole(folds, groups)
        for fold in range(3):
            assert_allclose(np.bincount(y[folds == fold], minlength=2) / (folds == fold).sum(),
                            [2 / 3, 1 / 3], atol=1e-8, err_msg=f"seed {seed}")
        assert np.ptp(np.bincount(folds)) <= 1


@pytest.mark.parametrize("cls_distr", [(0.4, 0.6), (0.3, 0.7), (0.2, 0.8), (0.8, 0.2)])
@pytest.mark.parametrize("n_groups", [5, 30, 70])
def test_stratified_group_kfold_against_group_kfold(cls_distr, n_groups):
    rng = np.random.RandomState(0)
    y = rng.choice(2, size=1000, p=cls_distr)
    g = rng.choice(n_groups, 1000)
    folds = kfold(y, g, 5)
    assert_groups_whole(folds, g)
    ours = np.mean([stats.entropy(np.bincount(y[folds == f], minlength=2) / (folds == f).sum(),
                                  qk=cls_distr) for f in range(5)])
    theirs = np.mean([stats.entropy(np.bincount(y[test], minlength=2) / len(test), qk=cls_distr)
                      for _, test in GroupKFold(5).split(np.ones(1000), y, g)])
    assert ours <= theirs


NAMES = np.array(["Albert", "Jean", "Bertrand", "Michel", "Jean", "Francis", "Robert", "Michel",
                  "Rachel", "Lois", "Michelle", "Bernard", "Marion", "Laura", "Jean", "Rachel",
                  "Franck", "John", "Gael", "Anna", "Alix", "Robert", "Marion", "David", "Tony",
                  "Abel", "Becky", "Madmood", "Cary", "Mary", "Alexandre", "David", "Francis",
                  "Barack", "Abdoul", "Rasha", "Xi", "Silvia"])


@pytest.mark.parametrize("seed", range(5))
def test_group_kfold(seed):
    rng = np.random.RandomState(seed)
    groups = rng.randint(0, 15, 1000)
    folds = kfold(np.ones(1000), groups, 5, seed)
    assert all(abs(size - 200) <= 0.05 * 1000 for size in np.bincount(folds))
    assert_groups_whole(folds, groups)
    folds = kfold(np.ones(len(NAMES)), NAMES, 3, seed)  # string groups
    assert_groups_whole(folds, NAMES)
    ideal = len(NAMES) // 3
    assert all(abs(size - ideal) <= 0.05 * len(NAMES) + 1 for size in np.bincount(folds))


def test_shuffle_groupkfold():
    y = np.array([0] * 20 + [1] * 20)
    groups = np.arange(40) // 3
    by_seed = [kfold(y, groups, 4, seed) for seed in (0, 1)]
    for folds in by_seed:  # every item in exactly one test fold
        assert set(folds.tolist()) == {0, 1, 2, 3}
        assert_groups_whole(folds, groups)
    for fold in range(4):
        assert set(groups[by_seed[0] == fold]) != set(groups[by_seed[1] == fold])


@pytest.mark.parametrize("groups", [
    np.array([1, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]),
    np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]),
    np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2]),
    np.array([1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4]),
    [1, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    ["1", "1", "1", "1", "2", "2", "2", "3", "3", "3", "3", "3"],
])
def test_group_shuffle_split(groups):
    labels = np.asarray(groups)
    for seed in range(6):
        part = stratify(labels, np.ones((len(labels), 1)), [2 / 3, 1 / 3], seed)
        train, test = np.flatnonzero(part == 0), np.flatnonzero(part == 1)
        assert not np.isin(labels[train], labels[test]).any()
        assert len(train) + len(test) == len(labels)
        assert len(test) > 0 and len(train) > 0


@pytest.mark.parametrize("fractions, exp_train, exp_test",
                         [([0.8, 0.2], 8, 2), ([0.7, 0.3], 7, 3)])
def test_group_shuffle_split_default_test_size(fractions, exp_train, exp_test):
    part = stratify(np.arange(10), np.ones((10, 1)), fractions)
    assert np.bincount(part).tolist() == [exp_train, exp_test]


def test_fewer_groups_than_splits_is_an_error():
    with pytest.raises(UserError, match=r"2 group.*3 parts"):
        kfold(np.ones(6), [0, 0, 0, 1, 1, 1], 3)
