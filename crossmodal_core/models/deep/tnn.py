"""TNN-C-CCA: a triplet network on top of Cluster-CCA (Zeng, Yu, Oyama, ACM TOMM 2020).

``order="ccca-first"`` (the paper's figure): fit :class:`~crossmodal_core.models.linear.ClusterCCA`
to ``k`` components, project both views, then train two MLP branches on the ``k``-d outputs:
an **anchor branch** for audio (view 0) and one **visual branch** (view 1) shared by positives
and negatives. Triplets are cross-modal: anchor = an audio item, positive = a visual item of
the same class, negative = a visual item of another class, mined inside each mini-batch
(:mod:`.miners`: ``"batch-all"``, ``"batch-hard"``, ``"semi-hard"``), with the loss
``max(||a − p||² − ||a − n||² + margin, 0)``.

``order="network-first"`` (one reference script): the branches run on the standardised raw
features, and Cluster-CCA is fitted afterwards on the branches' training outputs. This is the
order for image / spectrogram views ``(n, C, H, W)``: their branch is a CNN tower
(:mod:`.towers`); ``"ccca-first"`` refuses them (Cluster-CCA has no raw features to fit).

Cluster-CCA has at most ``classes − 1`` useful components, so ``n_components`` is clipped to
that (``n_components_`` holds the value used).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from crossmodal_core.models.deep._base import (
    TorchCrossModalEstimator,
    check_array_shape,
    check_positive_int,
    cluster_components,
    linear_stage_state,
    project,
    set_linear_stage_state,
)
from crossmodal_core.models.deep.distances import DISTANCES, pairwise_distance
from crossmodal_core.models.deep.losses import REDUCTIONS, triplet_loss_from_distances
from crossmodal_core.models.deep.miners import MINERS, mine_triplets
from crossmodal_core.models.deep.training import seeded

__all__ = ["TNNClusterCCA"]

ORDERS = ("ccca-first", "network-first")


def _fit_cluster_cca(views: list[np.ndarray], y: np.ndarray, n_components: int, variant: str, reg, beta: float):
    from crossmodal_core.models.linear import ClusterCCA

    k = cluster_components(n_components, y) if variant == "paper" else int(n_components)
    model = ClusterCCA(n_components=k, reg=reg, variant=variant, beta=beta)
    model.fit(views, y)
    return model


class TNNClusterCCA(TorchCrossModalEstimator):
    """Triplet neural network on Cluster-CCA.

    Parameters
    ----------
    n_components : int
        Cluster-CCA components ``k`` (10 in the paper; clipped to classes − 1).
    embedding_dim : int
        Output width of both branches (the final space with ``order="ccca-first"``).
    hidden : tuple of int
        Hidden widths of each branch (paper: 100-100-100).
    activation, dropout, batch_norm :
        Branch MLP settings (:func:`~crossmodal_core.models.deep.towers.make_tower`).
    margin : float
        Triplet margin ``α`` (paper: 0.3-0.5).
    distance : {"squared_euclidean", "euclidean", "cosine"}
    mining : {"semi-hard", "batch-all", "batch-hard"}
        Default semi-hard: best validation MAP on the VEGAS-shaped synthetic set (validation
        split held out from the training rows; see ``benchmarks/bench_deep.py``).
    reduction : {"mean_nonzero", "mean", "sum"}
        How triplet losses of a batch are combined.
    order : {"ccca-first", "network-first"}
    ccca_variant, ccca_reg, ccca_beta :
        Passed to :class:`~crossmodal_core.models.linear.ClusterCCA` (``variant``, ``reg``, ``beta``).
    epochs, batch_size, lr, weight_decay :
        Adam training settings (paper: lr 1e-3, about 10 epochs).
    patience : int or None
        Early stopping on validation MAP (needs ``validation`` in ``fit``).
    random_state : int or None
    device : {"cpu", "cuda", "auto"}
        ``"auto"`` (default): a CUDA GPU when present, else the CPU.
    progress : bool
        Show a tqdm bar.

    Attributes
    ----------
    module_ : ModuleDict with ``"anchor"`` (audio) and ``"item"`` (visual) branches
    n_components_ : int, the Cluster-CCA components used
    ccca_weights_, ccca_means_ : lists of the Cluster-CCA projection per view
    canonical_correlations_ : (n_components_,) Cluster-CCA correlations
    history_, best_epoch_, stopped_early_ : training record
    """

    accepts_images = True  # image views get CNN towers (towers.make_tower picks by rank)
    requires_labels = True

    def __init__(self, n_components: int = 10, embedding_dim: int = 10, hidden: tuple[int, ...] = (100, 100, 100),
                 activation: str = "tanh", dropout: float = 0.1, batch_norm: bool = False,
                 margin: float = 0.3, distance: str = "squared_euclidean", mining: str = "semi-hard",
                 reduction: str = "mean_nonzero", order: str = "ccca-first", ccca_variant: str = "paper",
                 ccca_reg: float | None = None, ccca_beta: float = 0.2, epochs: int = 10, batch_size: int = 128,
                 lr: float = 1e-3, weight_decay: float = 0.0, patience: int | None = None,
                 random_state: int | None = 0, device: str = "auto", progress: bool = True):
        self.n_components = n_components
        self.embedding_dim = embedding_dim
        self.hidden = hidden
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.margin = margin
        self.distance = distance
        self.mining = mining
        self.reduction = reduction
        self.order = order
        self.ccca_variant = ccca_variant
        self.ccca_reg = ccca_reg
        self.ccca_beta = ccca_beta
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.progress = progress

    # ------------------------------------------------------------------ structure
    def _check_params(self) -> None:
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {self.order!r}")
        if self.mining not in MINERS:
            raise ValueError(f"mining must be one of {MINERS}, got {self.mining!r}")
        if self.distance not in DISTANCES:
            raise ValueError(f"distance must be one of {DISTANCES}, got {self.distance!r}")
        if self.reduction not in REDUCTIONS or self.reduction == "none":
            raise ValueError(f"reduction must be one of {[r for r in REDUCTIONS if r != 'none']}, got {self.reduction!r}")
        if not self.margin > 0:
            raise ValueError(f"margin must be > 0, got {self.margin}")
        check_positive_int("n_components", self.n_components)

    def _branch_inputs(self) -> list[int]:
        if self.order == "ccca-first":
            return [self.n_components_, self.n_components_]
        return list(self.n_features_in_)

    def _build_module(self) -> nn.Module:
        return self._towers(dict(zip(("anchor", "item"), self._branch_inputs())), self.embedding_dim)

    # ------------------------------------------------------------------ stages
    def _network_inputs(self, views: list[np.ndarray]) -> list[np.ndarray]:
        if self.order == "ccca-first":
            return [project(v, w, m) for v, w, m in zip(views, self.ccca_weights_, self.ccca_means_)]
        return self._scaled_inputs(views)

    def _network_outputs(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return self._run_towers(self.module_, inputs)

    def _transform_arrays(self, views: list[np.ndarray]) -> list[np.ndarray]:
        out = self._network_outputs(self._network_inputs(views))
        if self.order == "network-first" and hasattr(self, "ccca_weights_"):
            out = [project(z, w, m) for z, w, m in zip(out, self.ccca_weights_, self.ccca_means_)]
        return out

    # ------------------------------------------------------------------ fit
    def fit(self, views: Sequence[np.ndarray], y: np.ndarray | None = None,
            validation: tuple | None = None, callback: Callable[[dict[str, Any]], Any] | None = None
            ) -> "TNNClusterCCA":
        """Fit Cluster-CCA and the triplet branches.

        Parameters
        ----------
        views : [audio (n, d_a), visual (n, d_v)] row-paired training views
        y : (n,) class labels (required)
        validation : ``(views_val, y_val)`` or None
            Held-out **training** data for validation MAP / early stopping (never test folds).
        callback : callable or None
            Called after every epoch with the epoch record (see :func:`.training.fit_loop`).
        """
        self._check_params()
        inputs = self._prepare_fit(views, y, validation)
        if self.order == "ccca-first" and any(v.ndim == 4 for v in inputs.views):
            raise ValueError("TNN-C-CCA with order='ccca-first' fits Cluster-CCA on the raw features, and an image "
                             "view (n, C, H, W) has none to fit it on; use order='network-first' (CNN branches on "
                             "the images, Cluster-CCA on their outputs) or a flat image feature view")
        self._begin_fit(inputs, forget=("module_", "ccca_weights_", "ccca_means_", "input_means_", "input_scales_"))
        if self.order == "ccca-first":
            ccca = _fit_cluster_cca(inputs.views, inputs.y, self.n_components, self.ccca_variant,
                                    self.ccca_reg, self.ccca_beta)
            self._set_ccca(ccca)
            network_inputs = self._network_inputs(inputs.views)
        else:
            network_inputs = self._fit_input_scaling(inputs.views)
            self.n_components_ = min(int(self.n_components), int(self.embedding_dim))
        xa, xv = (torch.as_tensor(a, device=inputs.device) for a in network_inputs)
        labels = torch.as_tensor(inputs.y, device=inputs.device)

        with seeded(inputs.seed, inputs.device) as generator:
            module = self._build_module().to(inputs.device)
            self.module_ = module
            optimizer = torch.optim.Adam(module.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            anchor, item = module["anchor"], module["item"]

            def step(idx: torch.Tensor) -> dict[str, torch.Tensor]:
                idx = idx.to(inputs.device)
                dist = pairwise_distance(anchor(xa[idx]), item(xv[idx]), self.distance)
                lab = labels[idx]
                a, p, n = mine_triplets(self.mining, dist.detach(), lab, lab, margin=self.margin)
                loss = triplet_loss_from_distances(dist, a, p, n, margin=self.margin, reduction=self.reduction)
                return {"loss": loss, "triplets": float(a.numel())}

            self._train(module, step, xa.shape[0], optimizer, generator, inputs, callback,
                        desc=f"TNN-C-CCA ({self.mining})")
        if self.order == "network-first":
            za, zv = self._network_outputs(self._network_inputs(inputs.views))
            self._set_ccca(_fit_cluster_cca([za, zv], inputs.y, self.n_components_, self.ccca_variant,
                                            self.ccca_reg, self.ccca_beta))
        return self

    def _set_ccca(self, ccca) -> None:
        self.ccca_weights_ = [np.asarray(w, dtype=np.float64) for w in ccca.weights_]
        self.ccca_means_ = [np.asarray(m, dtype=np.float64) for m in ccca.means_]
        self.canonical_correlations_ = np.asarray(ccca.canonical_correlations_, dtype=np.float64)
        self.n_components_ = int(ccca.n_components_)

    # ------------------------------------------------------------------ checkpoint state
    def _fitted_meta(self) -> dict[str, Any]:
        return {"n_components_": int(self.n_components_)}

    def _set_fitted_meta(self, meta: dict[str, Any]) -> None:
        self.n_components_ = int(meta["n_components_"])

    def _numpy_state(self) -> dict[str, np.ndarray]:
        state = linear_stage_state("ccca", self.ccca_weights_, self.ccca_means_)
        state["ccca.correlations"] = self.canonical_correlations_
        if self.order == "network-first":
            state.update(self._input_scaling_state())
        return state

    def _set_numpy_state(self, arrays: dict[str, np.ndarray]) -> None:
        k = self.n_components_
        if self.order == "ccca-first":
            dims = self.n_features_in_
        else:
            dims = [int(self.embedding_dim)] * 2
            self._set_input_scaling_state(arrays)
        self.ccca_weights_, self.ccca_means_ = set_linear_stage_state(arrays, "ccca", dims, k)
        self.canonical_correlations_ = check_array_shape(arrays, "ccca.correlations", (k,))
        self._reject_unexpected_arrays(arrays)
