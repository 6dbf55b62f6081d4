"""LSTM-C-CCA: LSTM towers over the segment sequences, the cluster-mixed CCA loss, and a linear
CCA on the towers' outputs at test time.

Source: the TNN-C-CCA line of work (Zeng, Yu, Oyama; poster row "LSTM_C_CCA", VEGAS MAP
66.62 / 71.34) and its public reference code ``ZenzenDatabase/CMR``: ``MultiCCA.py``
(``created_model``, ``trained_model``, ``tested_model``) and ``objectives.py`` (``cca_loss``).

Architecture (reference defaults, :class:`~.sequence_towers.LSTMTower`): audio ``(10, 128)``
-> LSTM 512 -> dropout 0.1 -> LSTM 512 -> time-distributed Dense 128 (softmax) -> flatten ->
Dense 64 (sigmoid); visual ``(10, 1024)``: the same with LSTM 784 and Dense 256. Loss:
:func:`~.losses.mixed_cluster_dcca_loss` with ``β = 0.2``, ridge 1e-4, all singular values.
RMSprop lr 1e-3, batch 200, 50 epochs. At test time a linear CCA (``use_cluster=False`` in
``tested_model``, ridge 1e-4) is fitted on the training outputs; ``transform`` returns its
``n_components`` canonical variates.

Departures from the reference code
----------------------------------
- The input ``BatchNormalization`` is replaced by per-feature standardisation of the inputs
  over the real training segments (batch statistics would mix in padded segments, and a
  learned affine map before an LSTM adds nothing a linear input layer does not have).
- Padding: the reference pads/cuts every clip to 10 segments with zeros; here padded
  segments (all-NaN, see :mod:`.sequence`) are skipped by the LSTMs (state carried over, zero
  output), so they cannot change the embedding.
- The cluster cross-covariance is computed exactly from class sums over every same-class
  pair of the batch (:func:`~.losses.cluster_covariances`, centred with the pair-weighted
  means); the reference loops over classes, materialises the pairs and centres with the
  plain batch means. Both are the Cluster-CCA cross-covariance; they differ only in centring.
- Batches are shuffled every epoch (the reference trains with ``shuffle=False``).
- The output width and ``n_components`` of the final CCA: the reference keeps all 64
  outputs' top ``outdim_size`` components; we default to 10 (the TNN-C-CCA papers' best).
"""

from __future__ import annotations

import torch
from torch import nn

from crossmodal_core.models.deep.sequence import SequenceCCAEstimator
from crossmodal_core.models.deep.sequence_towers import LSTMTower

__all__ = ["LSTMClusterCCA"]


class LSTMClusterCCA(SequenceCCAEstimator):
    """LSTM-C-CCA over two ``(n, T, d)`` sequence views.

    Parameters
    ----------
    n_components : int
        Canonical components of the final linear CCA (what ``transform`` returns).
    units : (int, int)
        LSTM width per view (reference: audio 512, visual 784).
    time_units : (int, int)
        Width of the time-distributed softmax layer per view (reference: 128, 256).
    out_features : int
        Sigmoid output width of both towers (reference: 64).
    dropout : float
        Dropout after each LSTM (reference: 0.1).
    beta : float in [0, 1]
        Weight of the pairwise cross-covariance in the loss (reference: 0.2; 1 = plain DCCA).
    reg, eps : float
        Ridge on the within-view covariances (reference: 1e-4) and eigenvalue floor.
    epochs, batch_size, lr :
        RMSprop training (reference: 50, 200, 1e-3).
    patience : int or None
        Early stopping on validation MAP (needs ``validation``).
    random_state, device, progress :
        As for every deep model.

    Attributes
    ----------
    module_ : ModuleDict with towers ``"view0"``, ``"view1"``
    weights_, means_, canonical_correlations_ : final linear CCA on the tower outputs
    n_features_in_, n_segments_ : ``d`` and ``T`` of each view
    input_means_, input_scales_ : input standardisation over real segments
    history_, best_epoch_, stopped_early_
    """

    requires_labels = True

    def __init__(self, n_components: int = 10, units: tuple[int, int] = (512, 784),
                 time_units: tuple[int, int] = (128, 256), out_features: int = 64, dropout: float = 0.1,
                 beta: float = 0.2, reg: float = 1e-4, eps: float = 1e-9, epochs: int = 50,
                 batch_size: int = 200, lr: float = 1e-3, patience: int | None = None,
                 random_state: int | None = 0, device: str = "cpu", progress: bool = True):
        self.n_components = n_components
        self.units = units
        self.time_units = time_units
        self.out_features = out_features
        self.dropout = dropout
        self.beta = beta
        self.reg = reg
        self.eps = eps
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.progress = progress

    def _out_features(self) -> list[int]:
        return [int(self.out_features)] * 2

    def _check_cca_params(self) -> None:
        super()._check_cca_params()
        for name in ("units", "time_units"):
            value = tuple(getattr(self, name))
            if len(value) != 2:
                raise ValueError(f"{name} must give one width per view (two ints), got {value!r}")

    def _build_module(self) -> nn.Module:
        return nn.ModuleDict({
            f"view{i}": LSTMTower(d, t, units=int(self.units[i]), time_units=int(self.time_units[i]),
                                  out_features=int(self.out_features), dropout=float(self.dropout))
            for i, (d, t) in enumerate(zip(self.n_features_in_, self.n_segments_))
        })

    def _optimizer(self, params) -> torch.optim.Optimizer:
        return torch.optim.RMSprop(params, lr=self.lr)
