"""Fold and zero-shot splits: balance, determinism, groups never split, seen/unseen disjoint."""

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold

from crossmodal_core.data import splits


def _imbalanced_labels(rng, n=503, n_classes=7):
    p = rng.dirichlet(np.full(n_classes, 2.0))
    y = rng.choice(n_classes, size=n, p=p)
    y[:n_classes * 5] = np.repeat(np.arange(n_classes), 5)  # every class has >= 5 items
    return rng.permutation(y)


def test_class_balanced_folds_balance_each_class(rng):
    y = _imbalanced_labels(rng)
    folds = splits.class_balanced_folds(y, n_splits=5, seed=3)
    assert folds.shape == y.shape and folds.dtype == np.int64
    assert set(np.unique(folds)) == set(range(5))
    for c in np.unique(y):
        per_fold = np.bincount(folds[y == c], minlength=5)
        n_c = (y == c).sum()
        assert per_fold.min() >= n_c // 5 and per_fold.max() <= -(-n_c // 5), (c, per_fold)
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= len(np.unique(y))


def test_class_balanced_folds_match_sklearn_and_are_seeded(rng):
    y = _imbalanced_labels(rng)
    folds = splits.class_balanced_folds(y, n_splits=4, seed=11)
    ref = np.empty(len(y), dtype=int)
    for k, (_, test) in enumerate(StratifiedKFold(4, shuffle=True, random_state=11).split(y, y)):
        ref[test] = k
    np.testing.assert_array_equal(folds, ref)
    np.testing.assert_array_equal(folds, splits.class_balanced_folds(y, n_splits=4, seed=11))
    assert not np.array_equal(folds, splits.class_balanced_folds(y, n_splits=4, seed=12))


def test_class_balanced_folds_errors_and_small_class_warning():
    with pytest.raises(ValueError, match="at least 2"):
        splits.class_balanced_folds(np.arange(10) % 2, n_splits=1)
    with pytest.raises(ValueError, match="cannot make 5 folds from 3 items"):
        splits.class_balanced_folds(np.array([0, 1, 0]), n_splits=5)
    y = np.array([0] * 20 + [1] * 2)
    with pytest.warns(UserWarning, match="smallest class has 2"):
        splits.class_balanced_folds(y, n_splits=5)


def test_group_folds_never_split_a_group_and_balance_sizes(rng):
    sizes = rng.integers(1, 12, size=80)
    groups = np.repeat([f"work-{i}" for i in range(80)], sizes)
    groups = groups[rng.permutation(len(groups))]
    folds = splits.group_folds(groups, n_splits=5, seed=0)
    for g in np.unique(groups):
        assert len(np.unique(folds[groups == g])) == 1, g
    fold_sizes = np.bincount(folds, minlength=5)
    assert fold_sizes.min() > 0
    assert fold_sizes.max() - fold_sizes.min() <= sizes.max()
    np.testing.assert_array_equal(folds, splits.group_folds(groups, n_splits=5, seed=0))
    assert not np.array_equal(folds, splits.group_folds(groups, n_splits=5, seed=1))


def test_group_folds_needs_enough_groups():
    with pytest.raises(ValueError, match="cannot make 3 folds from 2 groups"):
        splits.group_folds(["a", "a", "b"], n_splits=3)


def test_zero_shot_split_is_disjoint_seeded_and_complete(rng):
    y = _imbalanced_labels(rng, n_classes=10)
    z = splits.zero_shot_split(y, unseen_fraction=0.3, seed=4)
    assert len(z.unseen_classes) == 3 and len(z.seen_classes) == 7
    assert set(z.seen_classes).isdisjoint(z.unseen_classes)
    assert set(z.seen_classes) | set(z.unseen_classes) == set(range(10))
    np.testing.assert_array_equal(z.unseen_mask, np.isin(y, z.unseen_classes))
    np.testing.assert_array_equal(z.seen_mask, ~z.unseen_mask)
    assert not np.isin(y[z.seen_mask], z.unseen_classes).any()
    again = splits.zero_shot_split(y, unseen_fraction=0.3, seed=4)
    assert again.unseen_classes == z.unseen_classes
    draws = {tuple(splits.zero_shot_split(y, 0.3, seed=s).unseen_classes) for s in range(10)}
    assert len(draws) > 1
    assert z.to_dict()["n_unseen_items"] == int(z.unseen_mask.sum())


def test_zero_shot_split_explicit_classes_and_errors():
    y = np.arange(40) % 5
    z = splits.zero_shot_split(y, unseen_classes=[4, 1])
    assert z.unseen_classes == [1, 4] and z.seen_classes == [0, 2, 3]
    with pytest.raises(ValueError, match="do not occur"):
        splits.zero_shot_split(y, unseen_classes=[7, 1])
    with pytest.raises(ValueError, match="at least 2 unseen"):
        splits.zero_shot_split(y, unseen_classes=[1])
    with pytest.raises(ValueError, match="fewer than 2 seen"):
        splits.zero_shot_split(y, unseen_classes=[0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        splits.zero_shot_split(y, unseen_fraction=1.0)
    with pytest.raises(ValueError, match="cannot hold out"):
        splits.zero_shot_split(np.arange(12) % 3, unseen_fraction=0.5)


def test_fold_indices_and_iter_folds():
    folds = np.array([0, 1, 2, -1, 0, 1, 2, 0])
    train, test = splits.fold_indices(folds, 0)
    np.testing.assert_array_equal(test, [0, 4, 7])
    np.testing.assert_array_equal(train, [1, 2, 5, 6])  # row 3 (fold -1) is in neither
    seen_test = []
    for k, tr, te in splits.iter_folds(folds):
        assert np.intersect1d(tr, te).size == 0
        seen_test.extend(te.tolist())
    assert sorted(seen_test) == [0, 1, 2, 4, 5, 6, 7]
    with pytest.raises(ValueError, match="out of range"):
        splits.fold_indices(folds, 3)
