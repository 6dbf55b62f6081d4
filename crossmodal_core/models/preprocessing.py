"""Feature standardisation shared by every model family (NumPy only, no torch).

One definition: the training rows' per-feature mean and population standard deviation
(``ddof=0``, over axis 0); a constant feature (std at most ``1e-8`` times the largest std of
the view) gets scale 1 so it maps to 0 instead of dividing by zero.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["CONSTANT_STD", "fit_standardizer", "standardize", "standardise"]

#: a feature whose std is at most this fraction of the view's largest std counts as constant
CONSTANT_STD = 1e-8


def _feature_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x)
    mean = x.mean(axis=0, dtype=np.float64)
    std = x.std(axis=0, dtype=np.float64)
    floor = CONSTANT_STD * max(float(std.max(initial=0.0)), 1e-30)
    return mean, np.where(std > floor, std, 1.0)


def fit_standardizer(views: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-view ``(means, scales)``: each a list of ``(d_i,)`` float64 arrays.

    >>> means, scales = fit_standardizer([np.array([[0.0, 5.0], [2.0, 5.0]])])
    >>> means[0].tolist(), scales[0].tolist()
    ([1.0, 5.0], [1.0, 1.0])
    """
    stats = [_feature_stats(v) for v in views]
    return [m for m, _ in stats], [s for _, s in stats]


def standardize(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(x - mean) / scale`` as float32 (the dtype every model trains in)."""
    return ((x - mean) / scale).astype(np.float32, copy=False)


def standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Z-score ``train`` and ``others`` with the training statistics, in float64."""
    mean, scale = _feature_stats(train)
    return [(np.asarray(a, dtype=np.float64) - mean) / scale for a in (train, *others)]
