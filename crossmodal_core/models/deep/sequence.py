"""What the sequence models share: sequence views, padding, the cluster-mixed CCA loss, and
the estimator base for models over ``(n, T, d)`` segment sequences.

Sequence views
--------------
A sequence view is a float array ``(n, T, d)``: ``T`` segments (VEGAS / MV-10K: 10 one-second
segments) of ``d`` features. Items shorter than ``T`` are padded: a segment whose ``d``
values are **all NaN** is padding (:func:`pad_sequences` builds such arrays from a list of
``(T_i, d)`` arrays). Padding is ignored by every sequence tower (see
:mod:`.sequence_towers`); a segment that is only partly NaN, inf anywhere, or an item with no
real segment is an error. The time average over real segments is what the flat models see.

Cluster-mixed CCA loss (:func:`~.losses.mixed_cluster_dcca_loss`)
-----------------------------------------------------------------
The LSTM-C-CCA / S-DCCA reference code (``ZenzenDatabase/CMR: objectives.py``, ``cca_loss``)
mixes the pairwise and the cluster cross-covariance of a batch,
``Σ12 = β·Σ12_pair + (1 − β)·Σ12_cluster`` (every same-class pair a correspondence, computed
exactly from class sums with :func:`~.losses.cluster_covariances`), keeps the plain within-view
covariances ``Σ11``, ``Σ22`` with a ridge ``reg`` (1e-4), and minimises minus the sum of
**all** singular values of ``Σ11^{-1/2} Σ12 Σ22^{-1/2}`` (its trace norm). ``β = 1`` is plain
DCCA; without labels only ``β = 1`` is possible.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from crossmodal_core.models.base import check_labels
from crossmodal_core.models.deep._base import (
    FitInputs,
    TorchCrossModalEstimator,
    check_array_shape,
    check_positive_int,
    linear_stage_state,
    project,
    set_linear_stage_state,
)
from crossmodal_core.models.deep.losses import mixed_cluster_dcca_loss
from crossmodal_core.models.deep.training import resolve_device, resolve_seed, seeded

__all__ = ["pad_sequences", "check_sequence_views", "SequenceEstimator", "SequenceCCAEstimator"]


def pad_sequences(sequences: Sequence[np.ndarray], n_segments: int | None = None) -> np.ndarray:
    """Stack ``(T_i, d)`` arrays into one ``(n, T, d)`` float32 array, NaN-padded at the end.

    ``n_segments`` (default: the longest ``T_i``) cuts longer items to their first segments.
    """
    seqs = [np.asarray(s, dtype=np.float32) for s in sequences]
    if not seqs:
        raise ValueError("pad_sequences needs at least one sequence")
    if any(s.ndim != 2 for s in seqs) or len({s.shape[1] for s in seqs}) != 1:
        raise ValueError("every sequence must be (T_i, d) with the same d")
    if any(s.shape[0] < 1 for s in seqs):
        raise ValueError("every sequence needs at least one segment")
    t = max(s.shape[0] for s in seqs) if n_segments is None else int(n_segments)
    out = np.full((len(seqs), t, seqs[0].shape[1]), np.nan, dtype=np.float32)
    for i, s in enumerate(seqs):
        out[i, : min(t, len(s))] = s[:t]
    return out


def check_sequence_views(views: Sequence[np.ndarray], model: str, n_views: int | None = 2, min_rows: int = 1,
                         what: str = "views", n_segments: Sequence[int] | None = None,
                         n_features: Sequence[int] | None = None,
                         start: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Validate sequence views; return ``(x, mask)`` per view: ``x`` ``(n, T, d)`` float32 with
    padding set to 0, ``mask`` ``(n, T)`` bool (True = real segment).

    ``n_segments`` / ``n_features``: the ``T`` and ``d`` of each view at fit time (transform);
    ``start``: the index of ``views[0]`` in messages (a view checked alone).
    """
    if isinstance(views, np.ndarray):
        raise ValueError(f"{what} must be a list of arrays (one per modality), got a single array")
    views = list(views)
    if n_views is not None and len(views) != n_views:
        raise ValueError(f"{model} takes {n_views} {what}, got {len(views)}")
    out = []
    for i, v in enumerate(views, start=start):
        a = np.asarray(v)
        if a.ndim == 2:
            raise ValueError(
                f"{model} is a sequence model: {what}[{i}] must be (n, T, d) segment sequences, got a 2-D "
                f"array {a.shape} of flat features; pass the dataset's sequence views (audio_seq, visual_seq, "
                "sheet_seq) or use a flat model"
            )
        if a.ndim != 3:
            raise ValueError(f"{model}: {what}[{i}] must be (n, T, d) segment sequences, got shape {a.shape}")
        if not np.issubdtype(a.dtype, np.number) or a.dtype.kind == "c":
            raise ValueError(f"{model}: {what}[{i}] must be real numbers, got dtype {a.dtype}")
        a = a.astype(np.float32, copy=False)
        nan = np.isnan(a)
        pad = nan.all(axis=2)
        if (nan.any(axis=2) & ~pad).any():
            row = int(np.nonzero((nan.any(axis=2) & ~pad).any(axis=1))[0][0])
            raise ValueError(f"{model}: {what}[{i}] item {row} has a segment only partly NaN (padding is a "
                             "segment whose features are all NaN)")
        if np.isinf(a).any():
            raise ValueError(f"{model}: {what}[{i}] contains inf")
        mask = ~pad
        empty = ~mask.any(axis=1)
        if empty.any():
            raise ValueError(f"{model}: {what}[{i}] item {int(np.argmax(empty))} has no real segment (all padding)")
        if pad.any():
            a = np.where(pad[:, :, None], np.float32(0), a)
        if n_segments is not None and a.shape[1] != n_segments[i - start]:
            raise ValueError(f"{model}: {what}[{i}] has {a.shape[1]} segments, the model was fitted with "
                             f"{n_segments[i - start]} (pad shorter items with NaN segments)")
        if n_features is not None and a.shape[2] != n_features[i - start]:
            raise ValueError(f"{model}: {what}[{i}] has {a.shape[2]} features per segment, the model was "
                             f"fitted with {n_features[i - start]}")
        out.append((np.ascontiguousarray(a), mask))
    n = out[0][0].shape[0] if out else 0
    for i, (a, _) in enumerate(out, start=start):
        if a.shape[0] != n:
            raise ValueError(f"{model}: {what}[{i}] has {a.shape[0]} rows but {what}[{start}] has {n}")
    if n < min_rows:
        raise ValueError(f"{model}: {what} need at least {min_rows} rows, got {n}")
    return out


class SequenceEstimator(TorchCrossModalEstimator):
    """Base of the estimators over two ``(n, T, d)`` sequence views.

    Subclasses set ``self.module_`` to a ``ModuleDict`` of two towers ``"view0"`` / ``"view1"``
    (each ``tower(x, mask) -> (b, o)``), implement :meth:`_build_module` from
    ``n_features_in_`` (``d`` of each view) and ``n_segments_`` (``T`` of each view), and may
    post-process the tower outputs in :meth:`_transform_arrays`.

    Fitted state common to all: ``n_features_in_``, ``n_segments_``, ``input_means_`` /
    ``input_scales_`` (per-feature standardisation over the real segments of the training rows).
    """

    #: default tower output chunk (rows per forward pass); sequences are heavier than flat rows
    _transform_chunk = 2048

    # ------------------------------------------------------------------ fit plumbing
    def _prepare_sequence_fit(self, views: Sequence[np.ndarray], y: np.ndarray | None,
                              validation: tuple | None, requires_labels: bool | None = None) -> FitInputs:
        name = type(self).__name__
        requires_labels = self.requires_labels if requires_labels is None else requires_labels
        checked = check_sequence_views(views, name, n_views=2, min_rows=2)
        y = check_labels(y, checked[0][0].shape[0], required=requires_labels)
        val_views = val_y = None
        if validation is not None:
            if not isinstance(validation, (tuple, list)) or len(validation) != 2:
                raise ValueError("validation must be a (views_val, y_val) pair (y_val may be None)")
            val_views = check_sequence_views(validation[0], name, n_views=2, min_rows=2, what="validation views",
                                             n_segments=[a.shape[1] for a, _ in checked],
                                             n_features=[a.shape[2] for a, _ in checked])
            n_val = val_views[0][0].shape[0]
            val_y = (np.arange(n_val) if validation[1] is None
                     else check_labels(validation[1], n_val, required=True, min_classes=1))
        for pname in ("epochs", "batch_size"):
            check_positive_int(pname, getattr(self, pname))
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        return FitInputs(checked, y, val_views, val_y, resolve_seed(self.random_state), resolve_device(self.device))

    def _begin_fit(self, inputs: FitInputs, forget: Sequence[str] = ("module_",)) -> None:
        for attr in forget:
            if hasattr(self, attr):
                delattr(self, attr)
        self.n_features_in_ = [int(a.shape[2]) for a, _ in inputs.views]
        self.n_segments_ = [int(a.shape[1]) for a, _ in inputs.views]
        self.device_ = inputs.device

    def _fit_sequence_scaling(self, views: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """Per-feature mean / std over the real segments; returns the standardised views."""
        means, scales = [], []
        for a, m in views:
            real = a[m]  # (n_real, d)
            mean = real.mean(axis=0, dtype=np.float64)
            std = real.std(axis=0, dtype=np.float64)
            floor = 1e-8 * max(float(std.max(initial=0.0)), 1e-30)
            means.append(mean)
            scales.append(np.where(std > floor, std, 1.0))
        self.input_means_, self.input_scales_ = means, scales
        return self._scaled_sequences(views)

    def _scaled_sequences(self, views: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        out = []
        for (a, m), mean, scale in zip(views, self.input_means_, self.input_scales_):
            z = ((a - mean.astype(np.float32)) / scale.astype(np.float32)).astype(np.float32, copy=False)
            out.append(np.where(m[:, :, None], z, np.float32(0)))
        return out

    # ------------------------------------------------------------------ inference
    def _run_sequence(self, net: nn.Module, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``net(x, mask)`` in eval mode, in chunks, without gradients."""
        device = getattr(self, "device_", torch.device("cpu"))
        was_training = net.training
        net.eval()
        out = []
        with torch.no_grad():
            for start in range(0, x.shape[0], self._transform_chunk):
                sl = slice(start, start + self._transform_chunk)
                out.append(net(torch.as_tensor(np.ascontiguousarray(x[sl]), device=device),
                               torch.as_tensor(mask[sl], device=device)).cpu().numpy())
        net.train(was_training)
        return np.concatenate(out, axis=0)

    def _tower_outputs(self, views: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        scaled = self._scaled_sequences(views)
        return [self._run_sequence(net, x, m) for net, x, (_, m) in zip(self.module_.values(), scaled, views)]

    def _transform_arrays(self, views: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        return self._tower_outputs(views)

    def transform(self, views: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Project each sequence view into the shared space.

        Parameters
        ----------
        views : two (n_i, T, d_i) arrays, ``T`` and ``d_i`` as at fit time (NaN segments =
            padding); row counts may differ.

        Returns
        -------
        list of (n_i, n_components) float64 arrays
        """
        self._check_fitted("module_")
        name = type(self).__name__
        views = list(views)
        if len(views) != 2:
            raise ValueError(f"{name} was fitted on 2 views, got {len(views)}")
        checked = []
        for i, v in enumerate(views):  # each view alone: row counts may differ
            (pair,) = check_sequence_views([v], name, n_views=1, start=i, n_segments=[self.n_segments_[i]],
                                           n_features=[self.n_features_in_[i]])
            checked.append(pair)
        return [np.asarray(z, dtype=np.float64) for z in self._transform_arrays(checked)]

    # ------------------------------------------------------------------ checkpoint state
    def _fitted_meta(self) -> dict[str, Any]:
        return {"n_segments_": [int(t) for t in self.n_segments_]}

    def _set_fitted_meta(self, meta: dict[str, Any]) -> None:
        self.n_segments_ = [int(t) for t in meta["n_segments_"]]

    def _numpy_state(self) -> dict[str, np.ndarray]:
        return self._input_scaling_state()

    def _set_numpy_state(self, arrays: dict[str, np.ndarray]) -> None:
        self._set_input_scaling_state(arrays)
        self._reject_unexpected_arrays(arrays)

    def _torch_inputs(self, inputs: FitInputs) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        scaled = self._fit_sequence_scaling(inputs.views)
        xs = [torch.as_tensor(x, device=inputs.device) for x in scaled]
        masks = [torch.as_tensor(m, device=inputs.device) for _, m in inputs.views]
        return xs, masks


class SequenceCCAEstimator(SequenceEstimator):
    """Sequence towers trained with :func:`~.losses.mixed_cluster_dcca_loss`, then a linear CCA on
    their outputs over the whole training set (what ``transform`` returns: ``n_components``
    canonical variates).

    Subclasses provide :meth:`_build_module`, :meth:`_out_features` and :meth:`_optimizer`,
    and the parameters ``n_components``, ``beta``, ``reg``, ``eps``, ``epochs``, ``batch_size``,
    ``lr``, ``patience``, ``random_state``, ``device``, ``progress``.
    """

    def _out_features(self) -> list[int]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _optimizer(self, params) -> torch.optim.Optimizer:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_cca_params(self) -> None:
        check_positive_int("n_components", self.n_components)
        if not 0.0 <= self.beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {self.beta}")
        if self.reg < 0 or self.eps < 0:
            raise ValueError(f"reg and eps must be >= 0, got reg={self.reg}, eps={self.eps}")

    def _transform_arrays(self, views: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        out = self._tower_outputs(views)
        if hasattr(self, "weights_"):
            out = [project(z, w, m) for z, w, m in zip(out, self.weights_, self.means_)]
        return out

    def fit(self, views: Sequence[np.ndarray], y: np.ndarray | None = None, validation: tuple | None = None,
            callback: Callable[[dict[str, Any]], Any] | None = None):
        """Train the towers on row-paired sequences, then fit the final linear CCA.

        Parameters
        ----------
        views : [view0 (n, T0, d0), view1 (n, T1, d1)] row-paired sequence views
        y : (n,) class labels (needed when ``beta < 1``)
        validation : ``(views_val, y_val)`` held-out training rows, or None (early stopping)
        callback : per-epoch callable (see :func:`.training.fit_loop`)
        """
        self._check_cca_params()
        if y is None and self.beta < 1.0 and not self.requires_labels:
            raise ValueError(f"{type(self).__name__} with beta={self.beta} mixes in the cluster "
                             "cross-covariance: it needs class labels y (or set beta=1)")
        inputs = self._prepare_sequence_fit(views, y, validation, requires_labels=self.beta < 1.0)
        self._begin_fit(inputs, forget=("module_", "weights_", "means_"))
        out = min(self._out_features())
        if self.n_components > out:
            raise ValueError(f"n_components ({self.n_components}) cannot exceed the tower output width ({out})")
        self.n_components_ = int(self.n_components)
        (x0, x1), (m0, m1) = self._torch_inputs(inputs)
        labels = None if inputs.y is None else torch.as_tensor(inputs.y, device=inputs.device)
        n = x0.shape[0]
        batch_size = min(int(self.batch_size), n)
        with seeded(inputs.seed, inputs.device) as generator:
            module = self._build_module().to(inputs.device)
            self.module_ = module
            optimizer = self._optimizer(module.parameters())
            f, g = module["view0"], module["view1"]

            def step(idx: torch.Tensor) -> torch.Tensor:
                idx = idx.to(inputs.device)
                lab = None if labels is None or self.beta >= 1.0 else labels[idx]
                return mixed_cluster_dcca_loss(f(x0[idx], m0[idx]), g(x1[idx], m1[idx]), lab, beta=self.beta,
                                               reg=self.reg, eps=self.eps)

            # covariance objectives need full batches: never a short trailing batch
            self._train(module, step, n, optimizer, generator, inputs, callback,
                        desc=type(self).__name__, batch_size=batch_size, drop_last=True)
        from crossmodal_core.models.linear import CCA

        outputs = self._tower_outputs(inputs.views)
        linear = CCA(n_components=self.n_components_, reg=max(self.reg, 1e-6), reg_scale="absolute").fit(outputs)
        self.weights_ = [np.asarray(w, dtype=np.float64) for w in linear.weights_]
        self.means_ = [np.asarray(m, dtype=np.float64) for m in linear.means_]
        self.canonical_correlations_ = np.asarray(linear.canonical_correlations_, dtype=np.float64)
        self.n_components_ = int(linear.n_components_)
        return self

    def _fitted_meta(self) -> dict[str, Any]:
        return {**super()._fitted_meta(), "n_components_": int(self.n_components_)}

    def _set_fitted_meta(self, meta: dict[str, Any]) -> None:
        super()._set_fitted_meta(meta)
        self.n_components_ = int(meta["n_components_"])

    def _numpy_state(self) -> dict[str, np.ndarray]:
        state = linear_stage_state("cca", self.weights_, self.means_)
        state["cca.correlations"] = self.canonical_correlations_
        state.update(self._input_scaling_state())
        return state

    def _set_numpy_state(self, arrays: dict[str, np.ndarray]) -> None:
        k = self.n_components_
        self.weights_, self.means_ = set_linear_stage_state(arrays, "cca", self._out_features(), k)
        self.canonical_correlations_ = check_array_shape(arrays, "cca.correlations", (k,))
        self._set_input_scaling_state(arrays)
        self._reject_unexpected_arrays(arrays)
