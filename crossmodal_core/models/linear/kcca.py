"""Kernel CCA and kernel cluster-CCA with an RBF kernel, made scalable by the Nyström method.

**Approximation.** Exact KCCA solves a generalised eigenproblem on the ``n × n`` kernel
matrices (O(n³); 22,483² doubles alone are 4 GB). We instead map each view with scikit-learn's
:class:`~sklearn.kernel_approximation.Nystroem`: ``m = n_nystroem`` landmark rows drawn at
random (``random_state``) give an explicit feature map ``φ(x) ∈ R^m`` with
``φ(x)ᵀφ(x') ≈ k(x, x') = exp(−γ‖x − x'‖²)`` (exact on the span of the landmarks), and run
ridge-regularised *linear* CCA (or cluster-CCA) on ``φ`` of each view. This is KCCA with the
kernel replaced by its rank-``m`` Nyström approximation, and the ridge acting on the feature
covariance (a scale-free ``reg · mean variance`` by default) plays the role of KCCA's kernel
regulariser. Cost O(n·m·d + n·m²) instead of O(n³).

``gamma="scale"`` uses ``1 / (d · Var(X))`` per view (the SVC convention, ``Var`` over all
entries of the training view), so the kernel width follows the data's scale.

``weights_`` and ``means_`` live in the Nyström feature space (``(m_i, k)`` and ``(m_i,)``);
``feature_maps_`` holds the fitted ``Nystroem`` of each view.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.kernel_approximation import Nystroem

from crossmodal_core.data.dataset import check_views
from crossmodal_core.models.base import CrossModalEstimator
from crossmodal_core.models.linear._linalg import column_correlations
from crossmodal_core.models.linear.cca import CCA, _check_dtype, _transform_blockwise
from crossmodal_core.models.linear.cluster import ClusterCCA, split_views_and_labels

__all__ = ["KCCA", "ClusterKCCA"]


def resolve_gamma(gamma: str | float, view: np.ndarray) -> float:
    """The RBF ``gamma`` for one view (``"scale"`` = ``1 / (d · Var(view))``)."""
    if isinstance(gamma, str):
        if gamma != "scale":
            raise ValueError(f"gamma must be 'scale' or a positive float, got {gamma!r}")
        var = float(np.var(view, dtype=np.float64))
        return 1.0 / (view.shape[1] * var) if var > 0 else 1.0
    if isinstance(gamma, (bool, np.bool_)) or not np.isscalar(gamma) or not np.isfinite(gamma) or gamma <= 0:
        raise ValueError(f"gamma must be 'scale' or a positive float, got {gamma!r}")
    return float(gamma)


def _nystroem_on_basis(gamma: float, basis: np.ndarray, inds: np.ndarray, seed: int | None) -> Nystroem:
    """A fitted RBF ``Nystroem`` whose landmarks are ``basis`` (rows ``inds`` of the view), as
    ``Nystroem.fit`` on the whole view would make it: the normalisation is computed by
    ``Nystroem.fit`` itself on the landmark rows, then the row indices are set to the view's."""
    fmap = Nystroem(kernel="rbf", gamma=gamma, n_components=len(basis), random_state=seed)
    # Nystroem.fit draws a permutation of the rows it gets; on the landmark rows alone, an
    # identity draw keeps their order, so the result is the full-view fit's map exactly.
    fmap.set_params(random_state=_IdentityPermutation())
    fmap.fit(basis)
    fmap.set_params(random_state=seed)
    fmap.component_indices_ = np.asarray(inds, dtype=np.int64)
    return fmap


class _IdentityPermutation(np.random.RandomState):
    """A ``RandomState`` whose ``permutation(n)`` is ``arange(n)`` (landmarks in the order given)."""

    def permutation(self, x: Any) -> np.ndarray:  # noqa: D102
        return np.arange(x) if np.ndim(x) == 0 else np.asarray(x)


class _NystroemModel(CrossModalEstimator):
    """Shared machinery: fit a Nyström map per view, then delegate to a linear model."""

    def _check_nystroem_params(self) -> int:
        m = self.n_nystroem
        if isinstance(m, (bool, np.bool_)) or not isinstance(m, (int, np.integer)) or m < 1:
            raise ValueError(f"n_nystroem must be a positive integer, got {m!r}")
        resolve_gamma(self.gamma, np.ones((1, 1)))  # validates gamma before any work
        return int(m)

    def _fit_maps(self, views: list[np.ndarray]) -> list[np.ndarray]:
        m = self._check_nystroem_params()
        self.feature_maps_ = []
        self.gammas_ = []
        features = []
        for i, v in enumerate(views):
            gamma = resolve_gamma(self.gamma, v)
            # a different landmark draw per view, reproducible from one seed
            seed = None if self.random_state is None else int(self.random_state) + i
            fmap = Nystroem(kernel="rbf", gamma=gamma, n_components=min(m, v.shape[0]), random_state=seed)
            features.append(fmap.fit_transform(v))
            self.feature_maps_.append(fmap)
            self.gammas_.append(gamma)
        self.n_features_ = [v.shape[1] for v in views]
        return features

    def _fit_maps_streamed(self, views: list[Any], client: Any = None) -> list[Any]:
        """The Nyström maps of views on disk (or any view, with a client), without reading them whole.

        ``gamma="scale"`` comes from one streamed pass of column moments; the landmarks are the
        rows scikit-learn's ``Nystroem.fit`` would draw for the same ``random_state`` (the same
        permutation of ``range(n)``), read by index, and the map is fitted on exactly those rows,
        so the maps equal the in-memory ones."""
        from sklearn.utils import check_random_state

        from crossmodal_core.models.linear import streaming

        m = self._check_nystroem_params()
        self.feature_maps_, self.gammas_ = [], []
        for i, v in enumerate(views):
            if isinstance(self.gamma, str):
                means, variances = streaming.column_moments(v, client=client)
                var = float(np.mean(variances + means ** 2) - np.mean(means) ** 2)
                gamma = 1.0 / (v.shape[1] * var) if var > 0 else 1.0
            else:
                gamma = resolve_gamma(self.gamma, np.ones((1, 1)))
            seed = None if self.random_state is None else int(self.random_state) + i
            n = v.shape[0]
            size = min(m, n)
            inds = check_random_state(seed).permutation(n)[:size]
            basis = np.ascontiguousarray(streaming.take_rows(v, inds))
            self.feature_maps_.append(_nystroem_on_basis(gamma, basis, inds, seed))
            self.gammas_.append(gamma)
        self.n_features_ = [v.shape[1] for v in views]
        return [fmap.transform for fmap in self.feature_maps_]

    def _copy_linear(self, linear) -> None:
        self.linear_ = linear
        self.weights_ = linear.weights_
        self.means_ = linear.means_
        self.canonical_correlations_ = linear.canonical_correlations_
        self.n_components_ = linear.n_components_

    def transform(self, views: Sequence[np.ndarray | None]) -> list[np.ndarray | None]:
        """Map each view with its Nyström map and project it (entries may be ``None``).

        Returns a list of ``(n_i, n_components_)`` arrays.
        """
        self._check_fitted("linear_")
        return _transform_blockwise(self, views, self.n_features_,
                                    lambda a, i: self.linear_._project(self.feature_maps_[i].transform(a), i))

    def score(self, views: Sequence[np.ndarray], y: Any = None) -> np.ndarray:
        """Correlation of each pair of projected components on row-paired views, shape (k,)."""
        self._check_fitted("linear_")
        views = check_views(views, n_views=2, min_rows=2, what="views")
        zx, zy = self.transform(views)
        return column_correlations(zx, zy)


class KCCA(_NystroemModel):
    """RBF kernel CCA via a Nyström feature map per view, then ridge-regularised linear CCA.

    See the module docstring for the approximation.

    Parameters
    ----------
    n_components : int
    reg : float or (float, float)
        Ridge of the Nyström-feature covariances (see ``CCA``).
    reg_scale : {"mean_variance", "absolute"}
    gamma : "scale" or float
        RBF width, per view (``"scale"`` = ``1 / (d · Var(X))``).
    n_nystroem : int
        Landmarks ``m`` per view (clipped to the number of training rows).
    random_state : int or None
        Seeds the landmark draw.
    dtype : {"float32", "float64"}
        Precision of the Gram products.

    Attributes
    ----------
    feature_maps_ : list of fitted ``Nystroem``; gammas_ : list of float
    linear_ : the fitted inner ``CCA``; weights_, means_, canonical_correlations_, n_components_
        from it (in feature space); n_features_ : input dims.
    """

    def __init__(self, n_components: int = 10, reg: float | tuple[float, float] = 1e-3,
                 reg_scale: str = "mean_variance", gamma: str | float = "scale", n_nystroem: int = 1000,
                 random_state: int | None = 0, dtype: str = "float32"):
        self.n_components = n_components
        self.reg = reg
        self.reg_scale = reg_scale
        self.gamma = gamma
        self.n_nystroem = n_nystroem
        self.random_state = random_state
        self.dtype = dtype

    def fit(self, views: Sequence[np.ndarray], y: Any = None, client: Any = None) -> "KCCA":
        """Fit on row-paired views ``[(n, d_x), (n, d_y)]``; ``y`` is ignored.

        Views on disk, dask arrays or a Dask ``client`` (see :class:`CCA`) take the streamed
        path: the Nyström features of each row block are computed where the block is read and
        only their statistics are kept."""
        from crossmodal_core.models.linear import streaming

        views = streaming.check_stream_views(views, n_views=2, min_rows=2, what="views")
        linear = CCA(n_components=self.n_components, reg=self.reg, reg_scale=self.reg_scale, dtype=self.dtype)
        if streaming.current_client(client) is not None or any(streaming.is_lazy(v) for v in views):
            maps = self._fit_maps_streamed(views, client)
            linear._fit_streamed(views, _check_dtype(self.dtype), client, maps=maps)
            self._copy_linear(linear)
            return self
        features = self._fit_maps(views)
        self._copy_linear(linear.fit(features))
        return self


class ClusterKCCA(_NystroemModel):
    """Cluster-CCA on Nyström RBF features of each view (see the module docstring).

    Parameters are those of :class:`KCCA` plus ``variant``, ``beta`` and ``chunk_size`` of
    :class:`~crossmodal_core.models.linear.ClusterCCA` (whose ``reg=None`` / ``reg_scale=None``
    mean the variant's default). ``fit(views, y)`` accepts one label array for row-paired views
    or ``(y_x, y_y)`` for per-view labels.
    """

    requires_labels = True

    def __init__(self, n_components: int = 10, reg: float | tuple[float, float] | None = None,
                 reg_scale: str | None = None, variant: str = "paper", beta: float = 0.2,
                 gamma: str | float = "scale", n_nystroem: int = 1000, random_state: int | None = 0,
                 dtype: str = "float32", chunk_size: int | None = None):
        self.n_components = n_components
        self.reg = reg
        self.reg_scale = reg_scale
        self.variant = variant
        self.beta = beta
        self.gamma = gamma
        self.n_nystroem = n_nystroem
        self.random_state = random_state
        self.dtype = dtype
        self.chunk_size = chunk_size

    def fit(self, views: Sequence[np.ndarray], y: Any = None, client: Any = None) -> "ClusterKCCA":
        """Fit on two views with class labels (see the class docstring for the forms of ``y``);
        views on disk or a Dask ``client`` stream as in :class:`KCCA`."""
        from crossmodal_core.models.linear import streaming
        from crossmodal_core.models.linear.cluster import fit_statistics

        views, labels, paired = split_views_and_labels(views, y)
        linear = ClusterCCA(n_components=self.n_components, reg=self.reg, reg_scale=self.reg_scale,
                            variant=self.variant, beta=self.beta, dtype=self.dtype, chunk_size=self.chunk_size)
        _, _, _, dtype = linear._check_params()  # fail on bad parameters before the (costly) feature maps
        if streaming.current_client(client) is not None or any(streaming.is_lazy(v) for v in views):
            maps = self._fit_maps_streamed(views, client)
            stats = fit_statistics(views, labels, paired, dtype, linear._weights_rule(), linear._needs_cross(),
                                   block_rows=self.chunk_size, client=client, maps=maps)
            self._copy_linear(linear._fit_statistics(stats))
            self.classes_ = linear.classes_
            return self
        features = self._fit_maps(views)
        self._copy_linear(linear.fit(features, labels[0] if paired else (labels[0], labels[1])))
        self.classes_ = linear.classes_
        return self
