"""Train/test splits for the evaluation protocols.

All functions are deterministic for a given ``seed`` and return plain arrays, so a split can
be stored in a dataset file (``CrossModalDataset.folds``) and reproduced.

- :func:`class_balanced_folds` -- k-fold ids keeping each class's share in every fold
  (scikit-learn's ``StratifiedKFold``, shuffled with ``seed``): the papers' 5-fold protocol.
- :func:`group_folds` -- k-fold ids where every group (e.g. a musical work, so verses and
  voices of one work never straddle train and test) lies in exactly one fold; fold sizes
  balanced greedily (largest group first into the smallest fold, ties broken by ``seed``).
- :func:`zero_shot_split` -- classes split into seen (train) and unseen (test only).
- :func:`fold_indices` / :func:`iter_folds` -- ``(train_idx, test_idx)`` for a fold.

Fold id conventions: ``0..k-1``; ``-1`` marks an item that belongs to no fold (e.g. a
duplicate excluded from evaluation); such items are in neither the train nor the test
indices of any fold.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

__all__ = [
    "class_balanced_folds",
    "group_folds",
    "zero_shot_split",
    "ZeroShotSplit",
    "fold_indices",
    "iter_folds",
    "n_folds",
]


def _check_n_splits(n_splits: int, n_units: int, what: str) -> int:
    n_splits = int(n_splits)
    if n_splits < 2:
        raise ValueError(f"n_splits must be at least 2, got {n_splits}")
    if n_units < n_splits:
        raise ValueError(f"cannot make {n_splits} folds from {n_units} {what}")
    return n_splits


def class_balanced_folds(labels: np.ndarray, n_splits: int = 5, seed: int = 0) -> np.ndarray:
    """Fold id of every item, with each class spread evenly over the folds.

    Parameters
    ----------
    labels : int array ``(n,)`` class labels
    n_splits : number of folds ``k`` (>= 2)
    seed : shuffling seed (same seed -> same folds)

    Returns
    -------
    folds : int64 array ``(n,)`` with values ``0..k-1``; each fold holds
        ``floor`` or ``ceil`` of ``n_c / k`` items of every class ``c``.

    A class with fewer than ``k`` items cannot appear in every fold; a ``UserWarning`` says so.
    """
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels).reshape(-1)
    n_splits = _check_n_splits(n_splits, len(labels), "items")
    _, counts = np.unique(labels, return_counts=True)
    if counts.min() < n_splits:
        warnings.warn(
            f"the smallest class has {counts.min()} item(s), fewer than {n_splits} folds: "
            "some folds will lack that class", UserWarning, stacklevel=2,
        )
    folds = np.full(len(labels), -1, dtype=np.int64)
    skf = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # already warned above, in our words
        for k, (_, test) in enumerate(skf.split(np.zeros(len(labels)), labels)):
            folds[test] = k
    return folds


def group_folds(groups: Sequence, n_splits: int = 5, seed: int = 0) -> np.ndarray:
    """Fold id of every item such that no group is split across folds.

    Parameters
    ----------
    groups : array ``(n,)`` of group keys (str or int), e.g. the work id of each fragment
    n_splits : number of folds (<= number of distinct groups)
    seed : breaks ties between equal-sized groups and between equally full folds

    Returns
    -------
    folds : int64 array ``(n,)``, values ``0..k-1``. Groups are placed largest first into
        the currently smallest fold, so fold sizes differ by at most the largest group.
    """
    groups = np.asarray(groups).reshape(-1)
    uniq, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    n_splits = _check_n_splits(n_splits, len(uniq), "groups")
    rng = np.random.default_rng(seed)
    tiebreak = rng.permutation(len(uniq))
    order = np.lexsort((tiebreak, -sizes))  # largest first, random among equals
    fold_sizes = np.zeros(n_splits, dtype=np.int64)
    fold_of_group = np.empty(len(uniq), dtype=np.int64)
    fold_tiebreak = rng.permutation(n_splits)
    for g in order:
        # smallest fold; among equally small, a seeded (not index-ordered) choice
        k = int(np.lexsort((fold_tiebreak, fold_sizes))[0])
        fold_of_group[g] = k
        fold_sizes[k] += sizes[g]
    return fold_of_group[inverse]


@dataclass(frozen=True)
class ZeroShotSplit:
    """Result of :func:`zero_shot_split`.

    ``seen_mask`` / ``unseen_mask`` are boolean ``(n,)`` item masks (complementary);
    ``seen_classes`` / ``unseen_classes`` are sorted label values.
    """

    seen_mask: np.ndarray
    unseen_mask: np.ndarray
    seen_classes: list[int]
    unseen_classes: list[int]

    def to_dict(self) -> dict:
        return {
            "seen_classes": list(self.seen_classes),
            "unseen_classes": list(self.unseen_classes),
            "n_seen_items": int(self.seen_mask.sum()),
            "n_unseen_items": int(self.unseen_mask.sum()),
        }


def zero_shot_split(
    labels: np.ndarray,
    unseen_fraction: float | None = 0.3,
    unseen_classes: Sequence[int] | None = None,
    seed: int = 0,
) -> ZeroShotSplit:
    """Split the classes into seen (training) and unseen (test-only) classes.

    Parameters
    ----------
    labels : int array ``(n,)``
    unseen_fraction : share of the classes held out, in (0, 1); ``round(f * C)`` classes
        (at least 2, because MAP over a single class is trivially 1). Ignored when
        ``unseen_classes`` is given.
    unseen_classes : explicit label values to hold out
    seed : which classes are held out (same seed -> same classes)

    Returns
    -------
    :class:`ZeroShotSplit`. At least 2 classes stay seen (a supervised model needs them).
    """
    labels = np.asarray(labels).reshape(-1)
    classes = np.unique(labels)
    n_classes = len(classes)
    if unseen_classes is not None:
        unseen = np.unique(np.asarray(list(unseen_classes)))
        unknown = sorted(set(unseen.tolist()) - set(classes.tolist()))
        if unknown:
            raise ValueError(f"unseen_classes {unknown} do not occur in the labels (classes: {classes.tolist()})")
    else:
        if unseen_fraction is None or not 0.0 < float(unseen_fraction) < 1.0:
            raise ValueError(f"unseen_fraction must be in (0, 1), got {unseen_fraction}")
        n_unseen = max(2, int(round(float(unseen_fraction) * n_classes)))
        if n_unseen > n_classes - 2:
            raise ValueError(
                f"cannot hold out {n_unseen} of {n_classes} classes: zero-shot needs at least "
                "2 unseen and 2 seen classes"
            )
        rng = np.random.default_rng(seed)
        unseen = np.sort(rng.choice(classes, size=n_unseen, replace=False))
    if len(unseen) < 2:
        raise ValueError("zero-shot evaluation needs at least 2 unseen classes (MAP over one class is trivially 1)")
    if n_classes - len(unseen) < 2:
        raise ValueError(f"holding out {len(unseen)} of {n_classes} classes leaves fewer than 2 seen classes")
    unseen_mask = np.isin(labels, unseen)
    seen = np.setdiff1d(classes, unseen)
    return ZeroShotSplit(
        seen_mask=~unseen_mask,
        unseen_mask=unseen_mask,
        seen_classes=[int(c) for c in seen],
        unseen_classes=[int(c) for c in unseen],
    )


def n_folds(folds: np.ndarray) -> int:
    """Number of folds in a fold-id array (ids ``0..k-1``; ``-1`` ignored)."""
    folds = np.asarray(folds)
    valid = folds[folds >= 0]
    return int(valid.max()) + 1 if len(valid) else 0


def fold_indices(folds: np.ndarray, fold: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, test_idx)`` for ``fold``: test = items of that fold, train = every other
    item with a fold id >= 0."""
    folds = np.asarray(folds).reshape(-1)
    k = n_folds(folds)
    if not 0 <= int(fold) < k:
        raise ValueError(f"fold {fold} out of range: the fold ids run 0..{k - 1}")
    test = np.nonzero(folds == fold)[0]
    train = np.nonzero((folds >= 0) & (folds != fold))[0]
    return train, test


def iter_folds(folds: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(fold, train_idx, test_idx)`` for every fold in order."""
    for k in range(n_folds(folds)):
        train, test = fold_indices(folds, k)
        yield k, train, test
