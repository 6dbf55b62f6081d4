"""Choose a model's regularisation by validation retrieval MAP (not by canonical correlation).

Canonical correlation on held-out data does not track retrieval quality: a heavier ridge
usually *lowers* the correlations and *raises* MAP. So :func:`select_regularization` scores
each candidate by the MAP it reaches on class-balanced inner validation folds, averaged over
both directions (view 0 → view 1 and view 1 → view 0, cosine similarity, class relevance),
and over folds.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Mapping, Sequence

import numpy as np
from sklearn.base import clone

from crossmodal_core.data.dataset import check_views
from crossmodal_core.models.base import CrossModalEstimator, check_labels
from crossmodal_core.models.linear.cca import CCA, _check_dtype
from crossmodal_core.models.linear.cluster import ClusterCCA, ClusterStatistics

__all__ = ["select_regularization", "DEFAULT_REG_GRID"]

DEFAULT_REG_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
METRICS = ("map", "correlation")


def _candidates(grid: Sequence[float] | Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    if isinstance(grid, Mapping):
        names = list(grid)
        if not names:
            raise ValueError("grid must name at least one parameter")
        values = [list(grid[n]) for n in names]
        if any(len(v) == 0 for v in values):
            raise ValueError("every parameter in grid needs at least one value")
        return [dict(zip(names, combo)) for combo in itertools.product(*values)]
    values = list(grid)
    if not values:
        raise ValueError("grid must hold at least one value of reg")
    return [{"reg": v} for v in values]


#: parameters that only change the final solve, so fold statistics can be reused across them
_SOLVE_ONLY_PARAMS = {"reg", "reg_scale"}


def _fold_statistics(estimator, views: list[np.ndarray], labels: np.ndarray, folds: np.ndarray,
                     n_splits: int) -> list[ClusterStatistics]:
    """Sufficient statistics of each fold, on one shift and class order so that they add up."""
    dtype = np.dtype(estimator.dtype)
    shift = [v.mean(axis=0, dtype=np.float64) for v in views]
    classes = np.unique(labels).tolist()
    chunk = getattr(estimator, "chunk_size", None)  # None: each fold in one block
    parts = []
    for k in range(n_splits):
        rows = folds == k
        stats = ClusterStatistics(dtype, shift=shift, classes=classes)
        stats.update([v[rows] for v in views], [labels[rows], labels[rows]], True, chunk)
        parts.append(stats)
    return parts


def _validation_score(model: CrossModalEstimator, views: list[np.ndarray], y: np.ndarray, metric: str) -> float:
    if metric == "correlation":
        return float(np.sum(model.score(views)))
    from crossmodal_core.metrics import mean_average_precision

    za, zv = model.transform(views)
    forward = mean_average_precision(za, zv, y, y, metric="cosine")
    backward = mean_average_precision(zv, za, y, y, metric="cosine")
    return 0.5 * (forward + backward)


def select_regularization(
    estimator: CrossModalEstimator,
    views: Sequence[np.ndarray],
    y: np.ndarray,
    grid: Sequence[float] | Mapping[str, Sequence[Any]] = DEFAULT_REG_GRID,
    n_splits: int = 3,
    random_state: int = 0,
    metric: str = "map",
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Grid-search hyper-parameters of ``estimator`` by inner-fold validation.

    Parameters
    ----------
    estimator : an unfitted (or fitted: it is cloned, never modified) CCA-family model
    views : list of 2 row-paired arrays ``(n, d_x)``, ``(n, d_y)`` (the training data only)
    y : (n,) class labels; they define relevance for MAP and balance the folds; they are
        passed to ``fit`` (unsupervised models ignore them)
    grid : values of ``reg``, or a mapping ``{param: values}`` searched as a full product
    n_splits : number of class-balanced inner folds (each class spread evenly over the folds)
    random_state : seed of the fold assignment
    metric : ``"map"`` (mean of both directions' MAP, cosine) or ``"correlation"`` (sum of
        validation canonical correlations, for comparison: it does not track MAP)

    Notes
    -----
    For ``CCA`` and ``ClusterCCA`` with a grid over ``reg`` / ``reg_scale`` only, each fold's
    sufficient statistics are computed once and each candidate costs one small solve (the
    result is the same as refitting; float32 Grams may differ in the last digits).

    Returns
    -------
    best_params : dict
        The candidate with the highest mean validation score (ties: the first in grid order).
    table : list of dict
        One row per candidate: its params, ``"mean"``, ``"std"`` and per-fold ``"scores"``.
        Candidates that failed on a fold (e.g. a singular covariance with reg=0) score ``nan``
        and carry the error under ``"error"``.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    views = check_views(views, n_views=2, min_rows=2, what="views")
    labels = check_labels(y, views[0].shape[0])
    candidates = _candidates(grid)
    valid_names = set(estimator.get_params())
    for params in candidates:
        unknown = set(params) - valid_names
        if unknown:
            raise ValueError(f"{type(estimator).__name__} has no parameter(s) {sorted(unknown)}")

    from crossmodal_core.data.splits import class_balanced_folds

    folds = class_balanced_folds(labels, n_splits=n_splits, seed=random_state)
    # CCA and ClusterCCA are fitted from sums (Grams, class sums, counts): when the grid only
    # changes the ridge, each fold's sums are computed once and every candidate is one solve
    reuse = type(estimator) in (CCA, ClusterCCA) and all(set(p) <= _SOLVE_ONLY_PARAMS for p in candidates)
    if reuse:
        _check_dtype(estimator.dtype)
        parts = _fold_statistics(estimator, views, labels, folds, n_splits)
        train_stats = [ClusterStatistics.merged([p for j, p in enumerate(parts) if j != k]) for k in range(n_splits)]
    table: list[dict[str, Any]] = []
    for params in candidates:
        scores, error = [], None
        for k in range(n_splits):
            val = folds == k
            val_views = [v[val] for v in views]
            model = clone(estimator).set_params(**params)
            try:
                if reuse:
                    model._fit_statistics(train_stats[k])
                else:
                    model.fit([v[~val] for v in views], labels[~val])
                scores.append(_validation_score(model, val_views, labels[val], metric))
            except (ValueError, np.linalg.LinAlgError) as exc:
                scores.append(math.nan)
                error = str(exc)
        row = dict(params)
        arr = np.asarray(scores, dtype=np.float64)
        row["mean"] = float(arr.mean()) if np.isfinite(arr).all() else math.nan
        row["std"] = float(arr.std()) if np.isfinite(arr).all() else math.nan
        row["scores"] = scores
        if error is not None:
            row["error"] = error
        table.append(row)
    means = np.array([row["mean"] for row in table])
    if not np.isfinite(means).any():
        raise ValueError(f"every candidate failed; first error: {table[0].get('error')}")
    best = int(np.nanargmax(means))
    return {k: table[best][k] for k in candidates[best]}, table
