"""The estimator contract every model (linear or deep) follows, cca-zoo / scikit-learn style.

- Hyper-parameters are ``__init__`` arguments stored unchanged under the same name
  (so ``get_params`` / ``set_params`` / ``sklearn.base.clone`` work).
- ``fit(views, y=None)`` takes a list of 2-D arrays, one per modality, rows paired; ``y`` is
  an ``(n,)`` class label array for supervised models (ignored by unsupervised ones).
- ``transform(views)`` returns a list of ``(n_i, n_components)`` float arrays in the shared
  space. Views may have different row counts at transform time (each is projected alone).
- Fitted state lives in attributes ending with ``_``; calling ``transform`` before ``fit``
  raises ``sklearn.exceptions.NotFittedError``.
- ``fit`` warns (one ``UserWarning`` per view, see :func:`warn_if_constant`) when a view is
  constant, i.e. every one of its features has zero variance over the training rows: such a
  view carries nothing to correlate. A view with only some constant columns is fine, and
  ``transform`` / ``score`` never warn. Every subclass's ``fit`` gets this check from
  :class:`CrossModalEstimator` (``__init_subclass__`` wraps it), once per outermost call, so a
  model fitting an inner model (KCCA's inner CCA, a deep model's final CCA) warns once.
"""

from __future__ import annotations

import functools
import threading
import warnings
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from crossmodal_core.data.dataset import check_views

__all__ = ["CrossModalEstimator", "NotFittedError", "check_views", "check_labels", "warn_if_constant"]


def warn_if_constant(views: Sequence[np.ndarray] | Mapping[str, np.ndarray], what: str = "views",
                     stacklevel: int = 2) -> list[int]:
    """Warn once per constant view (every feature zero-variance over the rows); return their indices.

    A view is constant when it has at least 2 rows and at least one feature and each column
    holds a single value (exactly: ``min == max``). Views that are not 2-D numeric arrays are
    skipped silently (the estimator's own validation reports them). ``stacklevel`` counts as in
    :func:`warnings.warn` but from the caller of this function: the default 2 points the
    warning at the line that called the caller (the user's ``model.fit(...)``).
    """
    if isinstance(views, Mapping):
        views = list(views.values())
    if isinstance(views, np.ndarray) or views is None:
        return []
    constant = []
    for i, v in enumerate(views):
        if v is None or hasattr(v, "iter_blocks") or type(v).__module__.startswith("dask."):
            continue  # a view on disk is not read whole for a warning
        try:
            a = np.asarray(v)
        except (ValueError, TypeError):
            continue
        if a.ndim != 2 or a.shape[0] < 2 or a.shape[1] == 0 or a.dtype.kind not in "biuf":
            continue
        if np.array_equal(a.min(axis=0), a.max(axis=0)):  # NaN never compares equal: not reported
            constant.append(i)
            warnings.warn(
                f"{what}[{i}] is constant: each of its {a.shape[1]} features has zero variance over the "
                f"{a.shape[0]} rows, so this view carries no information to correlate (check how its "
                "features were extracted)",
                UserWarning,
                stacklevel=stacklevel + 1,
            )
    return constant


_fit_state = threading.local()


def _warn_constant_on_fit(fit: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an estimator's ``fit`` so the outermost call warns about constant views first."""

    @functools.wraps(fit)
    def wrapper(self, *args: Any, **kwargs: Any) -> Any:
        depth = getattr(_fit_state, "depth", 0)
        if depth == 0:
            warn_if_constant(args[0] if args else kwargs.get("views"), stacklevel=2)
        _fit_state.depth = depth + 1
        try:
            return fit(self, *args, **kwargs)
        finally:
            _fit_state.depth = depth

    wrapper._warns_constant = True  # type: ignore[attr-defined]
    return wrapper


class CrossModalEstimator(BaseEstimator):
    """Base class: shared validation and ``fit_transform``."""

    #: number of views the model takes (``None`` = any number >= 2)
    n_views: int | None = 2
    #: whether ``fit`` needs ``y``
    requires_labels: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fit = cls.__dict__.get("fit")
        if fit is not None and callable(fit) and not getattr(fit, "_warns_constant", False):
            cls.fit = _warn_constant_on_fit(fit)

    def fit(self, views: Sequence[np.ndarray], y: np.ndarray | None = None):  # pragma: no cover
        raise NotImplementedError

    def transform(self, views: Sequence[np.ndarray]) -> list[np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def fit_transform(self, views: Sequence[np.ndarray], y: np.ndarray | None = None) -> list[np.ndarray]:
        return self.fit(views, y).transform(views)

    # -- helpers for subclasses
    def _check_fitted(self, attribute: str) -> None:
        if not hasattr(self, attribute):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(views, y) first"
            )

    def _check_transform_views(self, views: Sequence[np.ndarray | None], n_features: Sequence[int],
                               allow_none: bool = False) -> list[np.ndarray | None]:
        """Validate views for transform: right count, 2-D, finite, matching feature dims.

        With ``allow_none`` an entry may be ``None`` (that view is skipped and stays ``None``).
        """
        views = list(views)
        if len(views) != len(n_features):
            raise ValueError(f"{type(self).__name__} was fitted on {len(n_features)} views, got {len(views)}")
        return [None if v is None and allow_none else self._check_transform_view(i, v, d)
                for i, (v, d) in enumerate(zip(views, n_features))]

    def _check_transform_view(self, i: int, v: Any, d: int) -> Any:
        """One view of :meth:`_check_transform_views` (``views[i]``, fitted with ``d`` features):
        2-D, finite, ``d`` columns; a view on disk is returned as it is (checked as blocks are
        read). Subclasses with other kinds of view override this, not the loop."""
        if hasattr(v, "iter_blocks"):
            if len(v.shape) != 2 or v.shape[1] != d:
                raise ValueError(f"views[{i}] has shape {tuple(v.shape)}, the model was fitted with {d} features")
            return v
        (a,) = check_views([v], min_rows=1, what=f"views[{i}]")
        if a.shape[1] != d:
            raise ValueError(f"views[{i}] has {a.shape[1]} features, the model was fitted with {d}")
        return a


def check_labels(y: np.ndarray | None, n_samples: int, required: bool = True, min_classes: int = 2) -> np.ndarray | None:
    """Validate a class label vector; returns int64 codes ``0..n_classes-1`` (via ``np.unique``)."""
    if y is None:
        if required:
            raise ValueError("this model is supervised: fit(views, y) needs class labels y")
        return None
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        raise ValueError("y must be a 1-D array of class labels (convert one-hot labels with argmax)")
    y = y.reshape(-1)
    if y.shape[0] != n_samples:
        raise ValueError(f"y has {y.shape[0]} labels but the views have {n_samples} rows")
    _, codes = np.unique(y, return_inverse=True)
    if codes.max(initial=-1) + 1 < min_classes:
        raise ValueError(f"y must hold at least {min_classes} classes, got {codes.max(initial=-1) + 1}")
    return codes.astype(np.int64)
