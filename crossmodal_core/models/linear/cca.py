"""Ridge-regularised linear CCA (two views), the base of the whole linear family.

See :mod:`crossmodal_core.models.linear._linalg` for the shared conventions (ridge scale,
normalisation, sign convention, precision).
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np

from crossmodal_core.data.dataset import check_views
from crossmodal_core.models.base import CrossModalEstimator
from crossmodal_core.models.linear._linalg import (
    centred_statistics,
    check_reg,
    column_correlations,
    solve_cca,
)

__all__ = ["CCA", "LinearCCAMixin"]

_DTYPES = ("float32", "float64")


def _check_dtype(dtype: str) -> np.dtype:
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.name not in _DTYPES:
        raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
    return resolved


def _check_n_components(n_components: int) -> int:
    if isinstance(n_components, (bool, np.bool_)) or not isinstance(n_components, (int, np.integer)) \
            or n_components < 1:
        raise ValueError(f"n_components must be a positive integer, got {n_components!r}")
    return int(n_components)


class LinearCCAMixin:
    """``transform`` / ``score`` for models holding ``weights_`` and ``means_``."""

    def _project(self, view: np.ndarray, index: int) -> np.ndarray:
        dtype = np.result_type(view.dtype, np.float32)
        w = self.weights_[index].astype(dtype, copy=False)
        return (view - self.means_[index].astype(dtype, copy=False)) @ w

    def transform(self, views: Sequence[np.ndarray | None]) -> list[np.ndarray | None]:
        """Project each view into the shared space.

        Parameters
        ----------
        views : list of 2 arrays, shapes (n_i, d_i)
            Views may have different row counts (each is projected alone). An entry may be
            ``None`` to skip that view (its output is ``None``).

        Returns
        -------
        list of (n_i, n_components_) arrays (float32 for float32 input, else float64)
        """
        self._check_fitted("weights_")
        return _transform_blockwise(self, views, [w.shape[0] for w in self.weights_], self._project)

    def score(self, views: Sequence[np.ndarray], y: np.ndarray | None = None) -> np.ndarray:
        """Canonical correlations of paired views in the learned space.

        Parameters
        ----------
        views : list of 2 arrays with the same number of rows (row ``i`` of each view paired)
        y : ignored (present for scikit-learn compatibility)

        Returns
        -------
        (n_components_,) float64: Pearson correlation of each pair of projected components.
        """
        self._check_fitted("weights_")
        views = check_views(views, n_views=len(self.weights_), min_rows=2, what="views")
        zx, zy = self.transform(views)
        return column_correlations(zx, zy)


def _transform_blockwise(model: CrossModalEstimator, views: Sequence[Any], n_features: Sequence[int],
                         project: Any) -> list[np.ndarray | None]:
    """``project(view, i)`` of each view; views on disk (or dask arrays) are projected row block
    by row block, so only the ``(n, k)`` result is held in memory."""
    from crossmodal_core.data.lazy import is_lazy, iter_row_blocks

    views = list(views)
    lazy = [v is not None and is_lazy(v) for v in views]
    checked = model._check_transform_views([None if z else v for v, z in zip(views, lazy)], n_features,
                                           allow_none=True)
    out: list[np.ndarray | None] = []
    for i, (a, z) in enumerate(zip(checked, lazy)):
        if not z:
            out.append(None if a is None else project(a, i))
            continue
        v = views[i]
        if len(v.shape) != 2 or v.shape[1] != n_features[i]:
            raise ValueError(f"views[{i}] has shape {tuple(v.shape)}, the model was fitted with {n_features[i]} features")
        parts = [project(check_views([block], min_rows=0, what=f"views[{i}]")[0], i)
                 for _, block in iter_row_blocks(v)]
        out.append(np.concatenate(parts) if parts else project(np.zeros((0, n_features[i]), np.float32), i))
    return out


class CCA(LinearCCAMixin, CrossModalEstimator):
    """Ridge-regularised canonical correlation analysis of two paired views.

    Solves ``max wxᵀ Cxy wy`` subject to ``wxᵀ (Cxx + rx I) wx = wyᵀ (Cyy + ry I) wy = 1``
    for ``n_components`` pairs: Gram matrices (float32 by default), Cholesky whitening of each
    view, SVD of the whitened cross-covariance.

    Parameters
    ----------
    n_components : int
        Number of components ``k``; clipped (with a warning) to ``min(d_x, d_y)``.
    reg : float or (float, float)
        Ridge added to the diagonal of each view's covariance.
    reg_scale : {"mean_variance", "absolute"}
        ``"mean_variance"`` (default): the ridge is ``reg · mean(diag(C))`` -- scale-free, so one
        ``reg`` suits features of any units. ``"absolute"``: the ridge is ``reg``.
    dtype : {"float32", "float64"}
        Precision of the Gram matrices (the solve is always float64). float32 gives the same
        retrieval MAP at about half the time; use float64 for exact comparisons.

    Attributes
    ----------
    weights_ : list of (d_i, k) float64 arrays
        Canonical directions; sign fixed so the largest-|.| entry of each column of
        ``weights_[0]`` is positive.
    means_ : list of (d_i,) float64 arrays (the training means, subtracted by ``transform``)
    canonical_correlations_ : (k,) float64, descending (training correlations of the
        regularised problem; equal to the empirical ones when ``reg=0``)
    n_components_ : int (after clipping)
    n_features_ : list of int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.standard_normal((500, 2))
    >>> a = z @ rng.standard_normal((2, 8)) + 0.5 * rng.standard_normal((500, 8))
    >>> v = z @ rng.standard_normal((2, 20)) + 0.5 * rng.standard_normal((500, 20))
    >>> model = CCA(n_components=2).fit([a, v])
    >>> za, zv = model.transform([a, v])
    >>> za.shape, zv.shape
    ((500, 2), (500, 2))
    """

    def __init__(self, n_components: int = 10, reg: float | tuple[float, float] = 1e-3,
                 reg_scale: str = "mean_variance", dtype: str = "float32"):
        self.n_components = n_components
        self.reg = reg
        self.reg_scale = reg_scale
        self.dtype = dtype

    def fit(self, views: Sequence[np.ndarray], y: np.ndarray | None = None, client: Any = None) -> "CCA":
        """Fit on paired views.

        Parameters
        ----------
        views : list of 2 arrays, shapes (n, d_x) and (n, d_y), rows paired: NumPy, on disk
            (:class:`~crossmodal_core.data.lazy.LazyArray`) or ``dask.array``
        y : ignored (accepted so that CCA fits in the same pipelines as supervised models)
        client : ``dask.distributed.Client`` computing the statistics block by block on its
            workers (default: the one of :func:`~crossmodal_core.models.linear.streaming.use_client`)

        Views on disk, dask arrays or a client take the streamed path
        (:mod:`~crossmodal_core.models.linear.streaming`); NumPy views in this process one
        pass of :func:`~crossmodal_core.models.linear._linalg.centred_statistics`.
        """
        from crossmodal_core.models.linear import streaming

        k = _check_n_components(self.n_components)
        regs = check_reg(self.reg, self.reg_scale)
        dtype = _check_dtype(self.dtype)
        views = streaming.check_stream_views(views, n_views=2, min_rows=2, what="views")
        if streaming.current_client(client) is not None or any(streaming.is_lazy(v) for v in views):
            return self._fit_streamed(views, dtype, client)
        x, v = views
        n = x.shape[0]
        # one streamed pass: block-wise centring feeding two syrks and one gemm (see _linalg)
        (mx, my), (cxx, cyy), cxy = centred_statistics(x, v, dtype)
        cxx /= n
        cyy /= n
        cxy /= n
        k = _clip_components(k, min(x.shape[1], v.shape[1]), "min(d_x, d_y)", type(self).__name__)
        self._set_solution(cxx, cyy, cxy, k, regs, [mx, my], [x.shape[1], v.shape[1]])
        return self

    def _fit_streamed(self, views: list[Any], dtype: np.dtype, client: Any = None, maps: Any = None) -> "CCA":
        """Fit from the weighted-total statistics of one streamed pass (one class, unit weights)."""
        from crossmodal_core.models.linear.cluster import fit_statistics

        n = views[0].shape[0]
        labels = [np.zeros(n, dtype=np.int64)] * 2
        stats = fit_statistics(views, labels, True, dtype, "ones", True, client=client, maps=maps)
        return self._fit_statistics(stats)

    def _fit_statistics(self, stats) -> "CCA":
        """Fit from the row-paired :class:`~crossmodal_core.models.linear.cluster.ClusterStatistics`
        of the training data (any labels): CCA needs only their plain Grams and pair cross Gram."""
        k = _check_n_components(self.n_components)
        regs = check_reg(self.reg, self.reg_scale)
        _check_dtype(self.dtype)
        cxx, cyy, cxy, means = stats.reference_covariances(1.0)
        dims = list(stats.n_features)
        k = _clip_components(k, min(dims), "min(d_x, d_y)", type(self).__name__)
        self._set_solution(cxx, cyy, cxy, k, regs, means, dims)
        return self

    def _set_solution(self, cxx, cyy, cxy, k, regs, means, n_features) -> None:
        wx, wy, corr = solve_cca(cxx, cyy, cxy, k, regs, self.reg_scale)
        self.weights_ = [wx, wy]
        self.means_ = [np.asarray(m, dtype=np.float64) for m in means]
        self.canonical_correlations_ = corr
        self.n_components_ = k
        self.n_features_ = list(n_features)


def _clip_components(k: int, limit: int, why: str, name: str) -> int:
    if k > limit:
        warnings.warn(
            f"{name}: n_components={k} exceeds {why}={limit}; using {limit} components",
            UserWarning, stacklevel=3,
        )
        return limit
    return k
