"""Cluster-CCA (Rasiwasia et al., AISTATS 2014), exact from sufficient statistics.

Cluster-CCA treats **every same-class pair** ``(x_i, y_j)`` (``label(x_i) == label(y_j)``) as a
correspondence and runs CCA on that set of pairs. With, for each class ``c``, the audio class
sum ``s_c = Σ_{i∈c} x_i``, the visual class sum ``t_c``, the class counts ``a_c`` (view 0) and
``b_c`` (view 1), the per-class Gram matrices ``G^x_c = Σ_{i∈c} x_i x_iᵀ`` and ``G^y_c``, and
``M = Σ_c a_c b_c`` pairs, the pair covariances are (each ``x_i`` appears in ``b_c`` pairs):

    μx  = (1/M) Σ_c b_c s_c                 μy  = (1/M) Σ_c a_c t_c
    Cxy = (1/M) Σ_c s_c t_cᵀ − μx μyᵀ
    Cxx = (1/M) Σ_c b_c G^x_c − μx μxᵀ      Cyy = (1/M) Σ_c a_c G^y_c − μy μyᵀ

which is **exactly** CCA on the materialised pairs, at cost ``O(n d²)`` instead of
``O(Σ_c a_c b_c d)``; ``transform`` centres with the pair-weighted means ``μx``, ``μy``.
All statistics are sums, so they are accumulated in chunks (``chunk_size`` rows at a time, or
several ``partial_fit`` calls for data larger than memory); memory is
``n_classes · (d_x² + d_y²)`` float64 numbers (about 85 MB for 10 classes of 128 + 1024 dims).
Sums are taken about a shift (the first chunk's mean) to avoid cancellation in float32.

Number of components: ``Cxy`` has rank at most ``C − 1`` (``C`` = classes present in both
views), so the ``"paper"`` variant has at most ``C − 1`` meaningful components. Asking for
more emits a ``UserWarning`` and fits ``C − 1`` (``n_components_`` holds the value used); the
extra directions would have zero correlation and arbitrary orientation, which only adds noise
to cosine retrieval.

Variant ``"reference"`` (the TNN-C-CCA public code): the cross-covariance blends the pairwise
(row-paired) one with the cluster one, ``Σ12 = β · pairwise + (1 − β) · cluster``, and the
within-view covariances are the plain ones over the items with an absolute ``1e-4`` ridge. In
this variant every block is centred with the plain view means (the cluster block is
``(1/M) Σ_c (s_c − a_c mx)(t_c − b_c my)ᵀ``), and ``β > 0`` needs row-paired views.
With ``β = 1`` it is plain :class:`~crossmodal_core.models.linear.CCA` with the same ridge.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from crossmodal_core.data.dataset import check_views
from crossmodal_core.models.base import CrossModalEstimator
from crossmodal_core.models.linear._linalg import centred, check_reg, gram, solve_cca
from crossmodal_core.models.linear.cca import (
    LinearCCAMixin,
    _check_dtype,
    _check_n_components,
    _clip_components,
)

__all__ = ["ClusterCCA", "ClusterStatistics"]

VARIANTS = ("paper", "reference")
#: default (reg, reg_scale) of each variant
VARIANT_DEFAULTS = {"paper": (1e-3, "mean_variance"), "reference": (1e-4, "absolute")}
#: rows whose per-class Grams are summed in the working dtype before joining the float64 totals
#: (bounds float32 accumulation as BLAS itself does within one product)
_FLUSH_ROWS = 65536


def _check_label_vector(y: Any, n: int, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        raise ValueError(f"{what} must be a 1-D array of class labels (convert one-hot labels with argmax)")
    y = y.reshape(-1)
    if y.shape[0] != n:
        raise ValueError(f"{what} has {y.shape[0]} labels but the view has {n} rows")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError(f"{what} contains NaN or inf")
    if y.dtype.kind not in "biuUSOf":
        raise ValueError(f"{what} must hold integer or string class labels, got dtype {y.dtype}")
    return y


def split_views_and_labels(views: Sequence[np.ndarray], y: Any) -> tuple[list[np.ndarray], list[np.ndarray], bool]:
    """Validate ``(views, y)`` for a cluster model.

    ``y`` is either one ``(n,)`` label array for row-paired views, or a tuple ``(y_x, y_y)`` of
    per-view labels (views may then have different row counts). Returns the views, per-view
    labels and whether rows are paired (only with the single-array form).
    """
    if isinstance(views, np.ndarray):
        raise ValueError("views must be a list of arrays (one per modality), got a single array")
    views = list(views)
    if len(views) != 2:
        raise ValueError(f"expected 2 views, got {len(views)}")
    if y is None:
        raise ValueError("this model is supervised: fit(views, y) needs class labels y")
    per_view = isinstance(y, (tuple, list)) and len(y) == 2 and all(np.ndim(part) == 1 for part in y)
    if per_view:
        out = [check_views([v], min_rows=1, what=f"views[{i}]")[0] for i, v in enumerate(views)]
        labels = [_check_label_vector(part, out[i].shape[0], f"y[{i}]") for i, part in enumerate(y)]
        # per-view labels declare the rows unpaired, even when the lengths happen to match
        return out, labels, False
    out = check_views(views, n_views=2, min_rows=1, what="views")
    labels = _check_label_vector(y, out[0].shape[0], "y")
    return out, [labels, labels], True


class ClusterStatistics:
    """Sufficient statistics of cluster-CCA for two views, accumulated chunk by chunk.

    Per view ``v`` and class ``c``: count, shifted sum and shifted Gram; plus the row-paired
    cross Gram while every chunk so far was row-paired (needed by the reference variant).
    """

    def __init__(self, dtype: np.dtype = np.dtype(np.float32), shift: Sequence[np.ndarray] | None = None,
                 classes: Sequence[Any] = ()):
        """``shift`` (one ``(d_i,)`` vector per view; default: the first chunk's means) and
        ``classes`` (registered in this order) let several statistics share one layout, so
        that :meth:`merged` can add them (e.g. the training folds of a cross-validation)."""
        self.dtype = np.dtype(dtype)
        self.classes: list[Any] = []
        self._index: dict[Any, int] = {}
        self.n_features: list[int] | None = None
        self.shift: list[np.ndarray] | None = None
        self.counts: list[list[int]] = [[], []]
        self.sums: list[list[np.ndarray]] = [[], []]
        self.grams: list[list[np.ndarray]] = [[], []]
        self.paired = True
        self.pair_cross: np.ndarray | None = None
        self.n_pairs_rows = 0
        if shift is not None:
            self._init_layout([np.asarray(sv, dtype=np.float64) for sv in shift])
            for label in classes:
                self._class_index(label)

    def _init_layout(self, shift: list[np.ndarray]) -> None:
        self.shift = shift
        self.n_features = [len(sv) for sv in shift]
        self.pair_cross = np.zeros((self.n_features[0], self.n_features[1]))

    @classmethod
    def merged(cls, parts: Sequence["ClusterStatistics"]) -> "ClusterStatistics":
        """The statistics of the union of the data behind ``parts`` (same shift and class order)."""
        first = parts[0]
        out = cls(first.dtype, shift=first.shift, classes=first.classes)
        for part in parts:
            if part.classes != first.classes or any(not np.array_equal(a, b) for a, b in zip(part.shift, first.shift)):
                raise ValueError("only statistics built with the same shift and classes can be merged")
            for v in range(2):
                for c in range(len(first.classes)):
                    out.counts[v][c] += part.counts[v][c]
                    out.sums[v][c] += part.sums[v][c]
                    out.grams[v][c] += part.grams[v][c]
            if part.paired and out.paired:
                out.pair_cross += part.pair_cross
                out.n_pairs_rows += part.n_pairs_rows
            else:
                out.paired, out.pair_cross = False, None
        return out

    def _class_index(self, label: Any) -> int:
        key = label.item() if hasattr(label, "item") else label
        idx = self._index.get(key)
        if idx is None:
            idx = len(self.classes)
            self._index[key] = idx
            self.classes.append(key)
            for v, d in enumerate(self.n_features):
                self.counts[v].append(0)
                self.sums[v].append(np.zeros(d))
                self.grams[v].append(np.zeros((d, d)))
        return idx

    def update(self, views: list[np.ndarray], labels: list[np.ndarray], paired: bool,
               chunk_size: int | None = None) -> None:
        """Add a chunk (see :func:`split_views_and_labels` for the argument forms)."""
        dims = [v.shape[1] for v in views]
        if self.n_features is None:
            self._init_layout([v.mean(axis=0, dtype=np.float64) if v.shape[0] else np.zeros(v.shape[1])
                               for v in views])
        elif dims != self.n_features:
            raise ValueError(f"views have {dims} features but earlier chunks had {self.n_features}")
        step = chunk_size or max(v.shape[0] for v in views) or 1
        # classes are registered in the same order as a view-by-view pass would (first
        # appearance per view and chunk, sorted within a chunk), independent of the loop below
        for view, lab in zip(views, labels):
            for start in range(0, view.shape[0], step):
                for label in np.unique(lab[start:start + step]):
                    self._class_index(label)
        with_cross = paired and self.paired
        # per-class Grams are summed in self.dtype and added to the float64 totals every
        # _FLUSH_ROWS rows (one float64 pass per class instead of one per chunk and class)
        pending: list[dict[int, np.ndarray]] = [{} for _ in views]
        pending_rows = 0
        # one pass over row chunks: each chunk is centred once and feeds the per-class syrks
        # of both views and, for paired rows, the pair cross product
        for start in range(0, max(v.shape[0] for v in views), step):
            blocks = []
            for v, (view, lab) in enumerate(zip(views, labels)):
                if start >= view.shape[0]:
                    continue
                block = centred(view[start:start + step], self.shift[v], self.dtype)
                block_labels = lab[start:start + step]
                # one stable sort makes every class a contiguous slice (one gather in all)
                order = np.argsort(block_labels, kind="stable")
                uniq, first, counts = np.unique(block_labels[order], return_index=True, return_counts=True)
                grouped = block[order]
                for label, lo, count in zip(uniq, first, counts):
                    rows = grouped[lo:lo + count]
                    c = self._class_index(label)
                    self.counts[v][c] += int(count)
                    self.sums[v][c] += rows.sum(axis=0, dtype=np.float64)
                    if c in pending[v]:
                        gram(rows, out=pending[v][c])  # one syrk per class block
                    else:
                        pending[v][c] = gram(rows)
                blocks.append(block)
            if with_cross:
                self.pair_cross += blocks[0].T @ blocks[1]
            pending_rows += step
            if pending_rows >= _FLUSH_ROWS:
                self._flush(pending)
                pending_rows = 0
        self._flush(pending)
        if with_cross:
            self.n_pairs_rows += views[0].shape[0]
        else:
            self.paired = False
            self.pair_cross = None

    def _flush(self, pending: list[dict[int, np.ndarray]]) -> None:
        for v, per_class in enumerate(pending):
            for c, g in per_class.items():
                self.grams[v][c] += g
            per_class.clear()

    # -- covariances
    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        a = np.asarray(self.counts[0], dtype=np.float64)
        b = np.asarray(self.counts[1], dtype=np.float64)
        return a, b, np.asarray(self.sums[0]), np.asarray(self.sums[1])

    def n_shared_classes(self) -> int:
        a, b, _, _ = self.arrays()
        return int(np.count_nonzero((a > 0) & (b > 0)))

    def paper_covariances(self):
        """(Cxx, Cyy, Cxy, means) of the materialised same-class pairs (module docstring)."""
        a, b, s, t = self.arrays()
        m = float(a @ b)
        if m == 0:
            raise ValueError("no class has items in both views, so cluster-CCA has no pairs")
        mux = (b @ s) / m
        muy = (a @ t) / m
        cxy = (s.T @ t) / m - np.outer(mux, muy)
        cxx = _weighted_sum(self.grams[0], b) / m - np.outer(mux, mux)
        cyy = _weighted_sum(self.grams[1], a) / m - np.outer(muy, muy)
        return cxx, cyy, cxy, [self.shift[0] + mux, self.shift[1] + muy]

    def reference_covariances(self, beta: float):
        """(Cxx, Cyy, Σ12, means) of the reference-code variant (module docstring)."""
        a, b, s, t = self.arrays()
        nx, ny = a.sum(), b.sum()
        m = float(a @ b)
        if m == 0:
            raise ValueError("no class has items in both views, so cluster-CCA has no pairs")
        mx = s.sum(axis=0) / nx
        my = t.sum(axis=0) / ny
        cxx = _weighted_sum(self.grams[0], np.ones_like(a)) / nx - np.outer(mx, mx)
        cyy = _weighted_sum(self.grams[1], np.ones_like(b)) / ny - np.outer(my, my)
        cluster = (s - np.outer(a, mx)).T @ (t - np.outer(b, my)) / m
        cross = (1.0 - beta) * cluster
        if beta > 0:
            if not self.paired:
                raise ValueError(
                    "variant='reference' with beta > 0 needs row-paired views with one label array y; "
                    "use beta=0 or variant='paper' for unpaired views"
                )
            pairwise = self.pair_cross / self.n_pairs_rows - np.outer(mx, my)
            cross = cross + beta * pairwise
        return cxx, cyy, cross, [self.shift[0] + mx, self.shift[1] + my]


def _weighted_sum(mats: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    out = np.zeros_like(mats[0])
    for mat, w in zip(mats, weights):
        if w:
            out += w * mat
    return out


class ClusterCCA(LinearCCAMixin, CrossModalEstimator):
    """Cluster-CCA: CCA over all same-class (view 0, view 1) pairs, computed exactly from class sums.

    See the module docstring for the formulas, the component limit and the reference variant.

    Parameters
    ----------
    n_components : int
        Components ``k``; the paper variant clips to (classes in both views − 1) with a warning.
    reg : float, (float, float) or None
        Ridge of each view's covariance; ``None`` = the variant's default (``1e-3`` scaled by the
        mean variance for ``"paper"``, absolute ``1e-4`` for ``"reference"``).
    reg_scale : {"mean_variance", "absolute"} or None
        How ``reg`` is scaled (see :class:`~crossmodal_core.models.linear.CCA`); ``None`` = the
        variant's default.
    variant : {"paper", "reference"}
    beta : float in [0, 1]
        Weight of the pairwise cross-covariance in the reference variant (ignored by "paper").
    dtype : {"float32", "float64"}
        Precision of the chunk Gram products (accumulated in float64).
    chunk_size : int
        Rows per chunk when accumulating statistics in ``fit``.

    Attributes
    ----------
    weights_, means_, canonical_correlations_, n_components_, n_features_ : as in ``CCA``
        (``canonical_correlations_`` are those of the cluster pairs).
    classes_ : array of the class labels seen
    statistics_ : :class:`ClusterStatistics` (kept so that ``partial_fit`` can continue)

    Notes
    -----
    ``fit(views, y)`` with one ``(n,)`` label array takes row-paired views; ``fit(views,
    (y_x, y_y))`` takes per-view labels and views of different lengths (the paper variant only
    needs labels). ``partial_fit`` accumulates more data and refits.
    """

    requires_labels = True

    def __init__(self, n_components: int = 10, reg: float | tuple[float, float] | None = None,
                 reg_scale: str | None = None, variant: str = "paper", beta: float = 0.2,
                 dtype: str = "float32", chunk_size: int = 8192):
        self.n_components = n_components
        self.reg = reg
        self.reg_scale = reg_scale
        self.variant = variant
        self.beta = beta
        self.dtype = dtype
        self.chunk_size = chunk_size

    def _check_params(self) -> tuple[int, tuple[float, float], str, np.dtype]:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if not (np.isscalar(self.beta) and 0.0 <= float(self.beta) <= 1.0):
            raise ValueError(f"beta must be a float in [0, 1], got {self.beta!r}")
        if not isinstance(self.chunk_size, (int, np.integer)) or self.chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {self.chunk_size!r}")
        default_reg, default_scale = VARIANT_DEFAULTS[self.variant]
        reg = default_reg if self.reg is None else self.reg
        scale = default_scale if self.reg_scale is None else self.reg_scale
        return _check_n_components(self.n_components), check_reg(reg, scale), scale, _check_dtype(self.dtype)

    def fit(self, views: Sequence[np.ndarray], y: Any = None) -> "ClusterCCA":
        """Fit from scratch.

        Parameters
        ----------
        views : list of 2 arrays (n_x, d_x), (n_y, d_y)
        y : (n,) labels for row-paired views, or a tuple ``(y_x, y_y)`` of per-view labels
        """
        for attr in ("statistics_", "weights_"):
            if hasattr(self, attr):
                delattr(self, attr)
        return self.partial_fit(views, y)

    def partial_fit(self, views: Sequence[np.ndarray], y: Any = None) -> "ClusterCCA":
        """Add a chunk of data to the sufficient statistics and refit (same arguments as ``fit``)."""
        _, _, _, dtype = self._check_params()
        views, labels, paired = split_views_and_labels(views, y)
        if not hasattr(self, "statistics_"):
            self.statistics_ = ClusterStatistics(dtype)
        self.statistics_.update(views, labels, paired, int(self.chunk_size))
        self._solve()
        return self

    def _fit_statistics(self, stats: ClusterStatistics) -> "ClusterCCA":
        """Fit from ready statistics (used by :func:`select_regularization` to reuse fold sums)."""
        self._check_params()
        self.statistics_ = stats
        self._solve()
        return self

    def _solve(self) -> None:
        k, regs, scale, _ = self._check_params()
        stats = self.statistics_
        shared = stats.n_shared_classes()
        if shared < 2:
            raise ValueError(f"cluster-CCA needs at least 2 classes present in both views, got {shared}")
        dx, dy = stats.n_features
        if self.variant == "paper":
            cxx, cyy, cxy, means = stats.paper_covariances()
            limit, why = min(shared - 1, dx, dy), "the number of useful components (classes - 1, dims)"
        else:
            cxx, cyy, cxy, means = stats.reference_covariances(float(self.beta))
            limit, why = (min(dx, dy), "min(d_x, d_y)") if self.beta > 0 else \
                (min(shared, dx, dy), "the rank of the cluster cross-covariance")
        k = _clip_components(k, limit, why, type(self).__name__)
        wx, wy, corr = solve_cca(cxx, cyy, cxy, k, regs, scale)
        self.weights_ = [wx, wy]
        self.means_ = [np.asarray(m, dtype=np.float64) for m in means]
        self.canonical_correlations_ = corr
        self.n_components_ = k
        self.n_features_ = [dx, dy]
        self.classes_ = np.asarray(stats.classes)
