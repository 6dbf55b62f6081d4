"""Deep CCA (Andrew et al., ICML 2013) and Cluster-DCCA (C-DCCA).

DCCA: two MLP towers ``f`` (view 0) and ``g`` (view 1) trained to maximise the sum of the top-
``k`` canonical correlations of ``f(X)`` and ``g(Y)`` on large mini-batches (the correlation
objective is a full-batch statistic: small batches bias it; 1,000+ rows per batch is the usual
compromise). After training, a linear CCA is fitted on the towers' outputs over the whole
training set (as in the paper), and ``transform`` returns those ``k`` canonical variates.

C-DCCA (:class:`ClusterDCCA`): the same objective over **all same-class pairs** of a batch
instead of the row pairs. We do not sample pairs: each batch's covariances are computed
exactly from class sums with the Cluster-CCA formula
(:func:`~crossmodal_core.models.deep.losses.cluster_covariances`), so every same-class
(audio, visual) pair inside the batch counts once, at ``O(batch · o²)`` cost. The final
linear step is :class:`~crossmodal_core.models.linear.ClusterCCA` on the towers' outputs.
Its cross-covariance has rank ``<= classes − 1``, so ``k`` is clipped to that.

Inputs are standardised per feature (train statistics) before the towers.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from crossmodal_core.models.deep._base import (
    standardize,
    TorchCrossModalEstimator,
    check_array_shape,
    check_positive_int,
    cluster_components,
    linear_stage_state,
    project,
    set_linear_stage_state,
)
from crossmodal_core.models.deep.losses import cluster_dcca_loss, dcca_loss
from crossmodal_core.models.deep.training import seeded

__all__ = ["DCCA", "ClusterDCCA"]


class DCCA(TorchCrossModalEstimator):
    """Deep CCA.

    Parameters
    ----------
    n_components : int
        Canonical components ``k`` maximised and returned.
    out_features : int or None
        Tower output width ``o`` (``None``: ``n_components``); ``k <= o``.
    hidden : tuple of int
        Hidden widths of each tower.
    activation, dropout, batch_norm :
        Tower settings (:func:`~crossmodal_core.models.deep.towers.make_tower`).
    reg, eps : float
        Ridge (absolute, on standardised-input tower outputs) and eigenvalue floor of the
        correlation objective; ``reg`` is also the ridge of the final linear CCA.
    epochs, batch_size, lr, weight_decay :
        Adam training settings; keep ``batch_size`` large (>= 10 · o).
    patience : int or None
        Early stopping on validation MAP (needs ``validation``).
    random_state, device, progress :
        As for every deep model; ``device="auto"`` (default) trains on a CUDA GPU when one is
        present, else on the CPU.

    Attributes
    ----------
    module_ : ModuleDict with towers ``"view0"`` and ``"view1"``
    weights_, means_ : final linear CCA on the tower outputs
    canonical_correlations_ : (k,) training correlations of the outputs
    input_means_, input_scales_ : standardisation of the inputs
    history_, best_epoch_, stopped_early_
    """

    accepts_images = True  # image views get CNN towers (towers.make_tower picks by rank)
    requires_labels = False
    _uses_labels = False

    def __init__(self, n_components: int = 10, out_features: int | None = None,
                 hidden: tuple[int, ...] = (256, 256), activation: str = "tanh", dropout: float = 0.0,
                 batch_norm: bool = False, reg: float = 1e-3, eps: float = 1e-9, epochs: int = 30,
                 batch_size: int = 1000, lr: float = 1e-3, weight_decay: float = 1e-5,
                 patience: int | None = None, random_state: int | None = 0, device: str = "auto",
                 progress: bool = True):
        self.n_components = n_components
        self.out_features = out_features
        self.hidden = hidden
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.reg = reg
        self.eps = eps
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.progress = progress

    def _out_features(self) -> int:
        return int(self.n_components if self.out_features is None else self.out_features)

    def _check_params(self) -> None:
        check_positive_int("n_components", self.n_components)
        if self.n_components > self._out_features():
            raise ValueError(f"n_components ({self.n_components}) cannot exceed out_features ({self._out_features()})")
        if self.reg < 0 or self.eps < 0:
            raise ValueError(f"reg and eps must be >= 0, got reg={self.reg}, eps={self.eps}")

    def _build_module(self) -> nn.Module:
        return self._towers({f"view{i}": d for i, d in enumerate(self.n_features_in_)}, self._out_features())

    def _outputs(self, views: list[np.ndarray]) -> list[np.ndarray]:
        from crossmodal_core.data.lazy import is_lazy

        if any(is_lazy(v) for v in views):  # views on disk: block by block
            return self._streamed_outputs(self.module_, views)
        return self._run_towers(self.module_, self._scaled_inputs(views))

    def _transform_arrays(self, views: list[np.ndarray]) -> list[np.ndarray]:
        out = self._outputs(views)
        if hasattr(self, "weights_"):
            out = [project(z, w, m) for z, w, m in zip(out, self.weights_, self.means_)]
        return out

    # ------------------------------------------------------------------ objective hooks
    def _optimizer(self, module: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(module.parameters(), lr=self.lr, weight_decay=self.weight_decay)

    def _effective_components(self, y: np.ndarray | None) -> int:
        return int(self.n_components)

    def _batch_loss(self, h0: torch.Tensor, h1: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return dcca_loss(h0, h1, n_components=self.n_components_, reg=self.reg, eps=self.eps)

    def _final_linear(self, outputs: list[np.ndarray], y: np.ndarray | None):
        from crossmodal_core.models.linear import CCA

        return CCA(n_components=self.n_components_, reg=self.reg, reg_scale="absolute").fit(outputs)

    # ------------------------------------------------------------------ fit
    def fit(self, views: Sequence[np.ndarray], y: np.ndarray | None = None,
            validation: tuple | None = None, callback: Callable[[dict[str, Any]], Any] | None = None):
        """Train the towers, then fit the final linear (cluster-)CCA on their outputs.

        Parameters
        ----------
        views : [view0 (n, d0), view1 (n, d1)] row-paired
        y : (n,) class labels (ignored by DCCA, required by ClusterDCCA; validation MAP uses
            ``validation``'s own labels)
        validation : ``(views_val, y_val)`` held-out training data, or None
        callback : per-epoch callable (see :func:`.training.fit_loop`)
        """
        from crossmodal_core.data.lazy import is_lazy

        self._check_params()
        inputs = self._prepare_fit(views, y if self._uses_labels else None, validation)
        self._begin_fit(inputs, forget=("module_", "weights_", "means_"))
        self.n_components_ = self._effective_components(inputs.y)
        if any(is_lazy(v) for v in inputs.views):
            return self._fit_streamed(inputs, callback)
        x0, x1 = (torch.as_tensor(x, device=inputs.device) for x in self._fit_input_scaling(inputs.views))
        labels = None if inputs.y is None else torch.as_tensor(inputs.y, device=inputs.device)
        n = x0.shape[0]
        batch_size = min(int(self.batch_size), n)
        with seeded(inputs.seed, inputs.device) as generator:
            module = self._build_module().to(inputs.device)
            self.module_ = module
            optimizer = self._optimizer(module)
            f, g = module["view0"], module["view1"]

            def step(idx: torch.Tensor) -> torch.Tensor:
                idx = idx.to(inputs.device)
                return self._batch_loss(f(x0[idx]), g(x1[idx]), None if labels is None else labels[idx])

            # the correlation objective needs full-rank batches: never a short trailing batch
            self._train(module, step, n, optimizer, generator, inputs, callback,
                        desc=type(self).__name__, batch_size=batch_size, drop_last=True)
        linear = self._final_linear(self._outputs(inputs.views), inputs.y)
        self.weights_ = [np.asarray(w, dtype=np.float64) for w in linear.weights_]
        self.means_ = [np.asarray(m, dtype=np.float64) for m in linear.means_]
        self.canonical_correlations_ = np.asarray(linear.canonical_correlations_, dtype=np.float64)
        self.n_components_ = int(linear.n_components_)
        return self

    def _fit_streamed(self, inputs, callback):
        """Views on disk: standardisation from one streamed pass, mini-batches from a
        ``DataLoader`` over seeded shuffled row blocks (:class:`~.training.RowBlockBatches`),
        the final linear CCA on tower outputs computed block by block (``n × out_features``)."""
        from crossmodal_core.models.deep.training import RowBlockBatches, streamed_batches

        self._fit_input_scaling_streamed(inputs.views)
        n = inputs.views[0].shape[0]
        batch_size = min(int(self.batch_size), n)
        means, scales = self.input_means_, self.input_scales_
        data = RowBlockBatches(inputs.views, inputs.y, batch_size, inputs.seed, drop_last=True,
                               prepare=lambda i, block: standardize(block, means[i], scales[i]))
        with seeded(inputs.seed, inputs.device) as generator:
            module = self._build_module().to(inputs.device)
            self.module_ = module
            optimizer = self._optimizer(module)  # the hook, as in the in-memory fit (S-DCCA: RMSprop)
            f, g = module["view0"], module["view1"]

            def step(batch: tuple) -> torch.Tensor:
                b0, b1, lab = (None if t is None else t.to(inputs.device) for t in batch)
                return self._batch_loss(f(b0), g(b1), lab if self._uses_labels else None)

            self._train(module, step, n, optimizer, generator, inputs, callback, desc=type(self).__name__,
                        batch_size=batch_size, drop_last=True, batches=streamed_batches(data))
        linear = self._final_linear(self._streamed_outputs(module, inputs.views), inputs.y)
        self.weights_ = [np.asarray(w, dtype=np.float64) for w in linear.weights_]
        self.means_ = [np.asarray(m, dtype=np.float64) for m in linear.means_]
        self.canonical_correlations_ = np.asarray(linear.canonical_correlations_, dtype=np.float64)
        self.n_components_ = int(linear.n_components_)
        return self

    # ------------------------------------------------------------------ checkpoint state
    def _fitted_meta(self) -> dict[str, Any]:
        return {"n_components_": int(self.n_components_)}

    def _set_fitted_meta(self, meta: dict[str, Any]) -> None:
        self.n_components_ = int(meta["n_components_"])

    def _numpy_state(self) -> dict[str, np.ndarray]:
        state = linear_stage_state("cca", self.weights_, self.means_)
        state["cca.correlations"] = self.canonical_correlations_
        state.update(self._input_scaling_state())
        return state

    def _set_numpy_state(self, arrays: dict[str, np.ndarray]) -> None:
        o, k = self._out_features(), self.n_components_
        self.weights_, self.means_ = set_linear_stage_state(arrays, "cca", [o, o], k)
        self.canonical_correlations_ = check_array_shape(arrays, "cca.correlations", (k,))
        self._set_input_scaling_state(arrays)
        self._reject_unexpected_arrays(arrays)


class ClusterDCCA(DCCA):
    """C-DCCA: Deep CCA over all same-class pairs of each batch (exact cluster covariances).

    Same parameters as :class:`DCCA`; ``fit`` requires class labels ``y``. ``n_components`` is
    clipped to ``classes − 1`` (the rank of the cluster cross-covariance).
    """

    requires_labels = True
    _uses_labels = True

    def _effective_components(self, y: np.ndarray | None) -> int:
        return max(1, cluster_components(self.n_components, y))

    def _batch_loss(self, h0: torch.Tensor, h1: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return cluster_dcca_loss(h0, h1, labels, n_components=self.n_components_, reg=self.reg, eps=self.eps)

    def _final_linear(self, outputs: list[np.ndarray], y: np.ndarray | None):
        from crossmodal_core.models.linear import ClusterCCA

        return ClusterCCA(n_components=self.n_components_, reg=self.reg, reg_scale="absolute").fit(outputs, y)
