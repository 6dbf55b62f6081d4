"""S-DCCA: supervised deep CCA with a cluster-mixed cross-covariance (Zeng, Yu, Oyama, IEEE ISM 2018).

Source: arXiv 1908.03744 and the public code ``ZenzenDatabase/CMR`` (``MultiCCA.py``:
``creat_model_dcca``; ``model.py``: ``sdcca_embedding``; ``objectives.py``: ``cca_loss``).

Model
-----
- Towers (``sdcca_embedding``): the batch-normalised input, then sigmoid MLPs with dropout 0.2;
  audio ``128 → 128 → 128 → 64 → 10`` and visual ``1024 → 256 → 256 → 128 → 10``
  (``hidden0`` / ``hidden1``; ``out_features`` 10).
- Loss (``cca_loss(use_cluster=True, beta)``): deep CCA where the cross-covariance mixes the
  paired and the cluster (all same-class pairs) estimates,
  ``Σ12 = β Σ12_pair + (1 − β) Σ12_cluster`` with ``β = 0.2``; ``Σ11`` / ``Σ22`` are the
  paired (batch) covariances with ridge ``r = 1e-4``; the loss is minus the sum of all
  canonical correlations of ``(Σ11, Σ22, Σ12)``
  (:func:`~crossmodal_core.models.deep.losses.mixed_cluster_dcca_loss`, shared with the sequence
  models).
- After training, cluster-CCA (:class:`~crossmodal_core.models.linear.ClusterCCA`) on the
  towers' outputs, ``n_components = min(10, classes − 1)`` (the paper's "cluster-CCA on the
  outputs"); ``transform`` returns its variates; retrieval by cosine.
- Training: RMSprop lr 1e-3, batch 200.

Departures
----------
- Epochs: the reference gives no budget for S-DCCA; we use 50, the budget of its sibling
  LSTM-C-CCA in the same code (``trained_model``).
- The reference's "all singular values" objective is ``sqrt(trace(TᵀT))`` (the Frobenius norm
  of ``T``, a known slip of the Keras DCCA port it builds on); we use Andrew et al.'s
  ``trace((TᵀT)^½) = Σ σ_i``, the sum of the canonical correlations, as DCCA here does.
- The reference centres the cluster term on the batch means and divides by the number of
  same-class pairs; we use the exact pair-weighted cluster covariance of
  :func:`~crossmodal_core.models.deep.losses.cluster_covariances` (centred on the
  pair-weighted means), the same estimate C-DCCA uses.
- Tower outputs are linear (the reference's last sigmoid is dropped: the cluster-CCA that
  follows is linear and a squashing output only shrinks its range); inputs are also
  standardised on the training statistics before the batch norm.
"""

from __future__ import annotations

import torch
from torch import nn

from crossmodal_core.models.deep.dcca import ClusterDCCA
from crossmodal_core.models.deep.losses import mixed_cluster_dcca_loss
from crossmodal_core.models.deep.towers import make_tower

__all__ = ["SupervisedDCCA"]


class SupervisedDCCA(ClusterDCCA):
    """S-DCCA (see the module docstring for the model, the sources and the departures).

    Parameters
    ----------
    n_components : int
        Cluster-CCA components returned (10; clipped to ``classes − 1``).
    out_features : int
        Tower output width (10).
    hidden0, hidden1 : tuple of int
        Hidden widths of the view-0 (audio) and view-1 (visual) towers.
    activation, dropout : tower activation ("sigmoid") and dropout (0.2)
    input_batch_norm : bool
        Batch-normalise each tower's input (the reference's first layer).
    beta : float in [0, 1]
        Share of the paired cross-covariance in the mixed loss (0.2).
    loss_components : int or None
        Canonical correlations summed by the loss (``None``: all ``out_features``, the reference).
    reg, eps : ridge of the loss covariances (1e-4, the reference's ``r1 = r2``) and floor;
        ``reg`` is also the ridge of the final cluster-CCA.
    epochs, batch_size, lr, weight_decay : RMSprop settings (50, 200, 1e-3, 0)
    patience, random_state, device, progress : as for every deep model

    Attributes
    ----------
    As :class:`~crossmodal_core.models.deep.ClusterDCCA`.
    """

    def __init__(self, n_components: int = 10, out_features: int = 10,
                 hidden0: tuple[int, ...] = (128, 128, 64), hidden1: tuple[int, ...] = (256, 256, 128),
                 activation: str = "sigmoid", dropout: float = 0.2, input_batch_norm: bool = True,
                 beta: float = 0.2, loss_components: int | None = None, reg: float = 1e-4, eps: float = 1e-9,
                 epochs: int = 50, batch_size: int = 200, lr: float = 1e-3, weight_decay: float = 0.0,
                 patience: int | None = None, random_state: int | None = 0, device: str = "cpu",
                 progress: bool = True):
        self.n_components = n_components
        self.out_features = out_features
        self.hidden0 = hidden0
        self.hidden1 = hidden1
        self.activation = activation
        self.dropout = dropout
        self.input_batch_norm = input_batch_norm
        self.beta = beta
        self.loss_components = loss_components
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

    def _check_params(self) -> None:
        if not 0.0 <= self.beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {self.beta}")
        if self.loss_components is not None and not 1 <= self.loss_components <= self._out_features():
            raise ValueError(f"loss_components must be in [1, out_features], got {self.loss_components}")
        super()._check_params()

    def _build_module(self) -> nn.Module:
        towers = {}
        for i, (d, hidden) in enumerate(zip(self.n_features_in_, (self.hidden0, self.hidden1))):
            tower = make_tower(int(d), tuple(hidden), self._out_features(), activation=self.activation,
                               dropout=float(self.dropout))
            towers[f"view{i}"] = nn.Sequential(nn.BatchNorm1d(int(d)), tower) if self.input_batch_norm else tower
        return nn.ModuleDict(towers)

    def _optimizer(self, module: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.RMSprop(module.parameters(), lr=self.lr, weight_decay=self.weight_decay)

    def _batch_loss(self, h0: torch.Tensor, h1: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return mixed_cluster_dcca_loss(h0, h1, labels, beta=self.beta, n_components=self.loss_components,
                                       reg=self.reg, eps=self.eps)
