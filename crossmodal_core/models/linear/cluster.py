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

__all__ = ["ClusterCCA", "ClusterStatistics", "fit_statistics"]

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
    from crossmodal_core.models.linear.streaming import check_stream_views

    if per_view:
        out = [check_stream_views([v], n_views=1, min_rows=1, what=f"views[{i}]")[0] for i, v in enumerate(views)]
        labels = [_check_label_vector(part, out[i].shape[0], f"y[{i}]") for i, part in enumerate(y)]
        # per-view labels declare the rows unpaired, even when the lengths happen to match
        return out, labels, False
    out = check_stream_views(views, n_views=2, min_rows=1, what="views")
    labels = _check_label_vector(y, out[0].shape[0], "y")
    return out, [labels, labels], True


class ClusterStatistics:
    """Sufficient statistics of cluster-CCA for two views, accumulated chunk by chunk.

    Per view ``v`` and class ``c``: count and shifted sum; the shifted Grams either **per
    class** (``gram_weights=None``: any later weighting is possible, so statistics of several
    folds or ``partial_fit`` calls can be merged and continued), or as **one weighted total**
    per view, ``Σ_i w_v[c(i)] (r_i − s)(r_i − s)ᵀ`` with fixed per-class weights
    (``gram_weights=(w_0, w_1)``): one syrk per row block of the rows scaled by ``√w``,
    whatever the number of classes, and ``d²`` instead of ``C · d²`` numbers. The paper
    variant's weights are the other view's class counts (``b`` for view 0, ``a`` for view 1),
    the reference variant's and plain CCA's are all ones; the solve checks that the counts it
    ends with are the ones the weights assumed. Plus the row-paired cross Gram while every
    chunk so far was row-paired, only when ``cross=True`` (the paper variant never uses it).
    """

    def __init__(self, dtype: np.dtype = np.dtype(np.float32), shift: Sequence[np.ndarray] | None = None,
                 classes: Sequence[Any] = (), gram_weights: Sequence[np.ndarray] | None = None,
                 cross: bool = True):
        """``shift`` (one ``(d_i,)`` vector per view; default: the first chunk's means) and
        ``classes`` (registered in this order) let several statistics share one layout, so
        that :meth:`merged` can add them (e.g. the training folds of a cross-validation).
        ``gram_weights`` (two ``(n_classes,)`` arrays, needs ``shift`` and ``classes``) selects
        the weighted-total Grams described in the class docstring."""
        self.dtype = np.dtype(dtype)
        self.classes: list[Any] = []
        self._index: dict[Any, int] = {}
        self.n_features: list[int] | None = None
        self.shift: list[np.ndarray] | None = None
        self.counts: list[list[int]] = [[], []]
        self.sums: list[list[np.ndarray]] = [[], []]
        self.grams: list[list[np.ndarray]] = [[], []]
        self.gram_weights = None if gram_weights is None else [np.asarray(w, dtype=np.float64) for w in gram_weights]
        self.with_cross = bool(cross)
        self.paired = True
        self.pair_cross: np.ndarray | None = None
        self.n_pairs_rows = 0
        if self.gram_weights is not None and (shift is None or len(classes) != len(self.gram_weights[0])):
            raise ValueError("gram_weights need the shift and one weight per class")
        if shift is not None:
            self._init_layout([np.asarray(sv, dtype=np.float64) for sv in shift])
            for label in classes:
                self._class_index(label)

    def _init_layout(self, shift: list[np.ndarray]) -> None:
        self.shift = shift
        self.n_features = [len(sv) for sv in shift]
        self.pair_cross = np.zeros((self.n_features[0], self.n_features[1])) if self.with_cross else None
        if self.gram_weights is not None:
            self.grams = [[np.zeros((d, d))] for d in self.n_features]

    def empty_like(self) -> "ClusterStatistics":
        """Zero statistics with this layout (shift, classes, weights, cross): one per row block."""
        return type(self)(self.dtype, shift=self.shift, classes=self.classes, gram_weights=self.gram_weights,
                          cross=self.with_cross)

    @classmethod
    def merged(cls, parts: Sequence["ClusterStatistics"]) -> "ClusterStatistics":
        """The statistics of the union of the data behind ``parts`` (same shift and class order)."""
        first = parts[0]
        out = first.empty_like()
        for part in parts:
            if part.classes != first.classes or any(not np.array_equal(a, b) for a, b in zip(part.shift, first.shift)):
                raise ValueError("only statistics built with the same shift and classes can be merged")
            if (part.gram_weights is None) != (first.gram_weights is None) or part.with_cross != first.with_cross or (
                    part.gram_weights is not None
                    and any(not np.array_equal(a, b) for a, b in zip(part.gram_weights, first.gram_weights))):
                raise ValueError("only statistics with the same Gram weights and cross setting can be merged")
            for v in range(2):
                for c in range(len(first.classes)):
                    out.counts[v][c] += part.counts[v][c]
                    out.sums[v][c] += part.sums[v][c]
                for c in range(len(out.grams[v])):
                    out.grams[v][c] += part.grams[v][c]
            if part.paired and out.paired:
                if out.pair_cross is not None:
                    out.pair_cross += part.pair_cross
                out.n_pairs_rows += part.n_pairs_rows
            else:
                out.paired, out.pair_cross = False, None
        return out

    def add_block(self, views: Sequence[np.ndarray], codes: Sequence[np.ndarray], paired: bool) -> None:
        """Add one row block in the weighted-total mode (``codes``: class indices ``0..C-1``).

        Each view's block is centred once into ``dtype``; class sums are one one-hot product
        (``C × m`` by ``m × d``); the Gram is one syrk of the rows scaled by ``√w[c(i)]``; the
        pair cross product (only with ``cross``) one gemm of the unscaled centred blocks. Every
        product is summed in ``dtype`` within the block, then in float64 across blocks.
        """
        if self.gram_weights is None:
            raise ValueError("add_block needs weighted-total statistics (gram_weights); use update()")
        n_classes = len(self.classes)
        blocks = []
        for v, (view, code) in enumerate(zip(views, codes)):
            if view.shape[1] != self.n_features[v]:
                raise ValueError(f"views[{v}] has {view.shape[1]} features but the statistics have {self.n_features[v]}")
            block = centred(view, self.shift[v], self.dtype)
            if len(block) == 0:
                blocks.append(block)
                continue
            counts = np.bincount(code, minlength=n_classes)
            # class sums of the block: one (C x m) one-hot product, in the block's dtype like the
            # Grams (np.add.reduceat with a float64 accumulator cost twice the 1024-d syrk)
            onehot = np.zeros((n_classes, len(block)), dtype=self.dtype)
            onehot[code, np.arange(len(block))] = 1
            sums = (onehot @ block).astype(np.float64)
            for c in np.nonzero(counts)[0]:
                self.counts[v][c] += int(counts[c])
                self.sums[v][c] += sums[c]
            weights = self.gram_weights[v]
            if np.all(weights == 1.0):
                gram_rows = block
            else:  # rows scaled by sqrt(w[class]): the weighted Gram is one syrk, no class split
                gram_rows = block * np.sqrt(weights).astype(self.dtype)[code][:, None]
            self.grams[v][0] += gram(gram_rows)  # one syrk of the block, summed in float64
            blocks.append(block)
        if not paired:
            self.paired, self.pair_cross = False, None
        elif self.paired:
            if self.pair_cross is not None:
                self.pair_cross += blocks[0].T @ blocks[1]
            self.n_pairs_rows += views[0].shape[0]

    def class_codes(self, labels: np.ndarray) -> np.ndarray:
        """Class indices ``0..C-1`` of ``labels`` (every label must be a registered class)."""
        keys = np.asarray(self.classes)
        try:
            order = np.argsort(keys, kind="stable")
            pos = np.searchsorted(keys[order], labels)
            pos = np.clip(pos, 0, len(keys) - 1)
            codes = order[pos]
            ok = keys[codes] == labels
        except TypeError:
            ok = None
        if ok is None or not np.all(ok):
            raise ValueError("labels hold classes the statistics were not set up with")
        return codes.astype(np.int64)

    def weighted_gram(self, v: int, weights: np.ndarray) -> np.ndarray:
        """``Σ_c weights[c] G_c`` of view ``v`` (checked against the fixed weights in that mode)."""
        if self.gram_weights is None:
            return _weighted_sum(self.grams[v], weights)
        if not np.array_equal(np.asarray(weights, dtype=np.float64), self.gram_weights[v]):
            raise ValueError("these statistics hold Grams weighted for other class counts (the data changed "
                             "after the weights were fixed); compute them again")
        return self.grams[v][0]

    def _class_index(self, label: Any) -> int:
        key = label.item() if hasattr(label, "item") else label
        idx = self._index.get(key)
        if idx is None:
            idx = len(self.classes)
            self._index[key] = idx
            self.classes.append(key)
            if self.gram_weights is not None and idx >= len(self.gram_weights[0]):
                raise ValueError(f"class {key!r} is not among the classes the Gram weights were fixed for")
            for v, d in enumerate(self.n_features):
                self.counts[v].append(0)
                self.sums[v].append(np.zeros(d))
                if self.gram_weights is None:
                    self.grams[v].append(np.zeros((d, d)))
        return idx

    def update(self, views: list[np.ndarray], labels: list[np.ndarray], paired: bool,
               chunk_size: int | None = None) -> None:
        """Add a chunk (see :func:`split_views_and_labels` for the argument forms).

        Per-class mode: each ``chunk_size`` block is sorted by class once and every class
        slice is one syrk (so blocks of many rows give large, fast syrks). Weighted mode:
        :meth:`add_block` on each block."""
        if self.gram_weights is not None:
            step = chunk_size or max(v.shape[0] for v in views) or 1
            codes = [self.class_codes(lab) for lab in labels]
            n = max(v.shape[0] for v in views)
            for start in range(0, n, step):
                self.add_block([v[start:start + step] for v in views], [c[start:start + step] for c in codes], paired)
            if not paired:
                self.paired, self.pair_cross = False, None
            return
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
        with_cross = paired and self.paired and self.pair_cross is not None
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
        if paired and self.paired:
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
        cxx = self.weighted_gram(0, b) / m - np.outer(mux, mux)
        cyy = self.weighted_gram(1, a) / m - np.outer(muy, muy)
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
        cxx = self.weighted_gram(0, np.ones_like(a)) / nx - np.outer(mx, mx)
        cyy = self.weighted_gram(1, np.ones_like(b)) / ny - np.outer(my, my)
        cluster = (s - np.outer(a, mx)).T @ (t - np.outer(b, my)) / m
        cross = (1.0 - beta) * cluster
        if beta > 0:
            if not self.paired:
                raise ValueError(
                    "variant='reference' with beta > 0 needs row-paired views with one label array y; "
                    "use beta=0 or variant='paper' for unpaired views"
                )
            if self.pair_cross is None:
                raise ValueError("these statistics were computed without the row-paired cross product (cross=False)")
            pairwise = self.pair_cross / self.n_pairs_rows - np.outer(mx, my)
            cross = cross + beta * pairwise
        return cxx, cyy, cross, [self.shift[0] + mx, self.shift[1] + my]


def _weighted_sum(mats: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    out = np.zeros_like(mats[0])
    for mat, w in zip(mats, weights):
        if w:
            out += w * mat
    return out


#: attributes of the solution (recomputed from ``statistics_`` after ``partial_fit``)
_SOLVED = ("weights_", "means_", "canonical_correlations_", "n_components_", "n_features_", "classes_")


def fit_statistics(views: Sequence[Any], labels: Sequence[np.ndarray], paired: bool, dtype: np.dtype,
                   weights: str, cross: bool, *, block_rows: int | None = None, client: Any = None,
                   maps: Sequence[Any] | None = None) -> ClusterStatistics:
    """Weighted-total :class:`ClusterStatistics` of whole views in one streamed pass.

    ``weights``: ``"counts"`` (the paper variant: view 0's Gram weighted by view 1's class
    counts and vice versa) or ``"ones"`` (reference variant, plain CCA). The shift is the
    first block's column means (after ``maps``), the classes the sorted distinct labels.
    """
    from crossmodal_core.models.linear import streaming

    classes = np.unique(np.concatenate([np.asarray(lab) for lab in labels]))
    stats0 = ClusterStatistics(dtype, shift=[np.zeros(1), np.zeros(1)], classes=classes.tolist())
    codes = [stats0.class_codes(np.asarray(lab)) for lab in labels]
    counts = [np.bincount(c, minlength=len(classes)).astype(np.float64) for c in codes]
    step = streaming.block_rows_for_views(views, block_rows)
    shift = []
    for i, v in enumerate(views):
        first = streaming._read(v, 0, min(step, v.shape[0]))
        if maps is not None and maps[i] is not None:
            first = maps[i](first)
        shift.append(first.mean(axis=0, dtype=np.float64) if len(first) else np.zeros(first.shape[1]))
    gram_weights = [counts[1], counts[0]] if weights == "counts" else [np.ones(len(classes))] * 2
    template = ClusterStatistics(dtype, shift=shift, classes=classes.tolist(), gram_weights=gram_weights,
                                 cross=cross and paired)
    stats = streaming.cluster_statistics(template, views, codes, paired, block_rows=step, client=client, maps=maps)
    if not paired:
        stats.paired, stats.pair_cross = False, None
    return stats


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
        Rows per block when accumulating statistics (``None``: about 128 MiB of rows; memory
        is a few blocks). In ``partial_fit`` every class slice of a block is one syrk.

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
    needs labels). ``partial_fit`` accumulates more data; the solve waits until the model is used.
    """

    requires_labels = True

    def __init__(self, n_components: int = 10, reg: float | tuple[float, float] | None = None,
                 reg_scale: str | None = None, variant: str = "paper", beta: float = 0.2,
                 dtype: str = "float32", chunk_size: int | None = None):
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
        if self.chunk_size is not None and (not isinstance(self.chunk_size, (int, np.integer))
                                            or isinstance(self.chunk_size, bool) or self.chunk_size < 1):
            raise ValueError(f"chunk_size must be a positive integer, got {self.chunk_size!r}")
        default_reg, default_scale = VARIANT_DEFAULTS[self.variant]
        reg = default_reg if self.reg is None else self.reg
        scale = default_scale if self.reg_scale is None else self.reg_scale
        return _check_n_components(self.n_components), check_reg(reg, scale), scale, _check_dtype(self.dtype)

    def fit(self, views: Sequence[Any], y: Any = None, client: Any = None) -> "ClusterCCA":
        """Fit from scratch, in one streamed pass over row blocks.

        Parameters
        ----------
        views : list of 2 arrays (n_x, d_x), (n_y, d_y): NumPy, on disk
            (:class:`~crossmodal_core.data.lazy.LazyArray`) or ``dask.array``
        y : (n,) labels for row-paired views, or a tuple ``(y_x, y_y)`` of per-view labels
        client : ``dask.distributed.Client`` computing the block statistics on its workers
            (default: the one of :func:`~crossmodal_core.models.linear.streaming.use_client`,
            else this process)

        The labels are known before the pass, so the class counts are too: the Grams are the
        weighted totals of :class:`ClusterStatistics` (one syrk per block and view whatever the
        number of classes; the pair cross product only when the variant uses it), and the CCA
        is solved once at the end. ``statistics_`` therefore cannot be continued with
        ``partial_fit`` (start with ``partial_fit`` for that).
        """
        from crossmodal_core.models.linear import streaming

        for attr in ("statistics_",) + _SOLVED:
            self.__dict__.pop(attr, None)
        _, _, _, dtype = self._check_params()
        views, labels, paired = split_views_and_labels(views, y)
        self.statistics_ = fit_statistics(views, labels, paired, dtype, self._weights_rule(), self._needs_cross(),
                                          block_rows=self.chunk_size, client=client)
        self._solve()
        return self

    def _weights_rule(self) -> str:
        return "counts" if self.variant == "paper" else "ones"

    def _needs_cross(self) -> bool:
        return self.variant == "reference" and float(self.beta) > 0

    def partial_fit(self, views: Sequence[np.ndarray], y: Any = None) -> "ClusterCCA":
        """Add a chunk of data to the sufficient statistics (same arguments as ``fit``).

        The CCA is solved once, when a fitted attribute (``weights_``, ``transform``, ...) is
        first used after the last ``partial_fit``, not at every call.
        """
        _, _, _, dtype = self._check_params()
        views, labels, paired = split_views_and_labels(views, y)
        views = [np.asarray(v) for v in views]
        if not hasattr(self, "statistics_"):
            self.statistics_ = ClusterStatistics(dtype, cross=self._needs_cross())
        elif self.statistics_.gram_weights is not None:
            raise ValueError("this model was fitted with fit(), whose statistics are weighted by its own class "
                             "counts and cannot take more rows; use partial_fit from the start")
        self.statistics_.update(views, labels, paired, self.chunk_size)
        for attr in _SOLVED:
            self.__dict__.pop(attr, None)
        return self

    def __getattr__(self, name: str) -> Any:
        # the solve after partial_fit happens on first use of a fitted attribute
        if name in _SOLVED and "statistics_" in self.__dict__:
            self._solve()
            return self.__dict__[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

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
