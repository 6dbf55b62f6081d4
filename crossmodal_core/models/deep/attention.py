"""Deep-attention sequence model: attention over chunks of the sequence, a temporal model inside
each chunk, a CCA-style subspace objective.

Source: the grant report and poster's audio<->video deep-attention model (YouTube-8M subset,
reported with Recall@1/5/10/20). **No architecture was published beyond the poster**, whose
ingredients are: the sequence cut into chunks, a temporal model inside each chunk, attention
over the chunks, a multi-linear (CCA-style) subspace objective. The closest paper is the ISM
2018 work of the same group (Zeng, Yu, Oyama, arXiv 1908.03744), an attention LSTM that picks
the top-k audio chunks. This module is **a design of ours in that spirit**, not a
reproduction:

- each view: :class:`~.sequence_towers.ChunkAttentionTower` -- segments embedded by
  ``Linear + tanh``, cut into chunks of ``chunk_size`` segments, a GRU inside each chunk (its
  final state summarises the chunk), additive attention over the chunks, a linear output of
  ``out_features``;
- objective: :func:`~.losses.mixed_cluster_dcca_loss` on the two towers' outputs, i.e. DCCA's sum of
  canonical correlations (``beta = 1``, unsupervised, instance pairs as on YouTube-8M), or the
  cluster-mixed version with labels (``beta < 1``);
- test time: a linear CCA on the training outputs, ``n_components`` canonical variates.

Evaluate it as the poster does, with instance-level Recall@K for K = 1, 5, 10, 20
(:data:`POSTER_RECALL_KS`; :func:`crossmodal_core.evaluate.paired_metrics` with
``ks=POSTER_RECALL_KS``), as well as class-level MAP.

Our defaults (none published): chunk size 2 (five chunks of ten segments), hidden 128,
attention 64, output 32, dropout 0.1, Adam lr 1e-3, batch 500 (a covariance objective needs
large batches), 30 epochs, ridge 1e-3.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from crossmodal_core.models.deep.sequence import SequenceCCAEstimator, check_sequence_views
from crossmodal_core.models.deep.sequence_towers import ChunkAttentionTower

__all__ = ["ChunkAttentionCCA", "POSTER_RECALL_KS"]

#: the Recall@K cut-offs the poster reports for the deep-attention model
POSTER_RECALL_KS: tuple[int, ...] = (1, 5, 10, 20)


class ChunkAttentionCCA(SequenceCCAEstimator):
    """Chunk-attention towers with a CCA objective over two ``(n, T, d)`` sequence views.

    Parameters
    ----------
    n_components : int
        Canonical components of the final linear CCA (what ``transform`` returns).
    chunk_size : int
        Segments per chunk (the last chunk is padded when ``T`` is not a multiple).
    hidden, attention_dim, out_features : int
        GRU / embedding width, attention width, tower output width.
    dropout : float
        Dropout after the segment embedding.
    beta : float in [0, 1]
        1 = pairwise DCCA objective (default, needs no labels); < 1 mixes in the cluster
        cross-covariance (needs ``y``).
    reg, eps : float
        Ridge on the within-view covariances and eigenvalue floor.
    epochs, batch_size, lr, weight_decay :
        Adam training.
    patience, random_state, device, progress :
        As for every deep model.

    Attributes
    ----------
    module_ : ModuleDict with towers ``"view0"``, ``"view1"``
    weights_, means_, canonical_correlations_ : final linear CCA on the tower outputs
    n_features_in_, n_segments_, input_means_, input_scales_, history_, best_epoch_, stopped_early_
    """

    #: instance-level retrieval reports these cut-offs for this model (``evaluate_paired``)
    recall_ks = POSTER_RECALL_KS

    requires_labels = False

    def __init__(self, n_components: int = 10, chunk_size: int = 2, hidden: int = 128, attention_dim: int = 64,
                 out_features: int = 32, dropout: float = 0.1, beta: float = 1.0, reg: float = 1e-3,
                 eps: float = 1e-9, epochs: int = 30, batch_size: int = 500, lr: float = 1e-3,
                 weight_decay: float = 1e-5, patience: int | None = None, random_state: int | None = 0,
                 device: str = "cpu", progress: bool = True):
        self.n_components = n_components
        self.chunk_size = chunk_size
        self.hidden = hidden
        self.attention_dim = attention_dim
        self.out_features = out_features
        self.dropout = dropout
        self.beta = beta
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

    def _out_features(self) -> list[int]:
        return [int(self.out_features)] * 2

    def _build_module(self) -> nn.Module:
        return nn.ModuleDict({
            f"view{i}": ChunkAttentionTower(d, hidden=int(self.hidden), out_features=int(self.out_features),
                                            chunk_size=int(self.chunk_size), attention_dim=int(self.attention_dim),
                                            dropout=float(self.dropout))
            for i, d in enumerate(self.n_features_in_)
        })

    def _optimizer(self, params) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)

    def chunk_attention(self, views: list[np.ndarray]) -> list[np.ndarray]:
        """Attention weight of every chunk, per view: ``(n_i, n_chunks)`` arrays summing to 1
        over the chunks (0 on chunks made only of padding), for inspection."""
        self._check_fitted("module_")
        out = []
        for i, v in enumerate(views):
            (pair,) = check_sequence_views([v], type(self).__name__, n_views=1, start=i,
                                           n_segments=[self.n_segments_[i]], n_features=[self.n_features_in_[i]])
            x = self._scaled_one(pair, i)
            net = self.module_[f"view{i}"]
            net.eval()
            with torch.no_grad():
                _, alpha = net.chunk_weights(torch.as_tensor(x, device=self.device_),
                                             torch.as_tensor(pair[1], device=self.device_))
            out.append(alpha.cpu().numpy())
        return out

    def _scaled_one(self, pair: tuple[np.ndarray, np.ndarray], i: int) -> np.ndarray:
        a, m = pair
        z = ((a - self.input_means_[i].astype(np.float32)) / self.input_scales_[i].astype(np.float32))
        return np.where(m[:, :, None], z.astype(np.float32), np.float32(0))
