"""Cross-modal transformer: a transformer encoder over each view's segments, trained with a
contrastive objective into one shared space.

Source: the grant report names transformers (with adversarial / contrastive learning) as the
next step after the CCA and attention models; **no architecture or hyper-parameters were
published**, so this is a design of ours, documented as such. It follows the usual recipe of
audio-visual contrastive encoders (CLIP-style two towers):

- each view: :class:`~.sequence_towers.TransformerTower` -- ``Linear(d, d_model)`` +
  learned position embedding, ``n_layers`` pre-norm encoder layers with ``n_heads`` heads
  and the padding mask (padded segments are never attended to), mean over real segments,
  ``LayerNorm + Linear`` to ``n_components``, L2-normalised;
- loss per batch: ``infonce_weight · InfoNCE + supcon_weight · SupCon``
  (:func:`~.losses.contrastive_objective`, shared with the contrastive aligner): the paired
  item is the positive of InfoNCE; with labels ``y`` every other-modality item of the same
  class is a positive of the supervised term (class-level retrieval needs it);
- retrieval by cosine in the ``n_components``-d space (no CCA step).

Our defaults: d_model 128, 4 heads, 2 layers, dropout 0.1, temperature 0.1, AdamW lr 3e-4
(weight decay 1e-4), batch 256, 30 epochs, gradient norm clipped at 5.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from crossmodal_core.models.deep._base import check_positive_int
from crossmodal_core.models.deep.losses import contrastive_objective
from crossmodal_core.models.deep.sequence import SequenceEstimator
from crossmodal_core.models.deep.sequence_towers import TransformerTower
from crossmodal_core.models.deep.towers import L2Normalize
from crossmodal_core.models.deep.training import seeded

__all__ = ["CrossModalTransformer"]


class _NormalizedTower(nn.Module):
    def __init__(self, tower: nn.Module):
        super().__init__()
        self.tower = tower
        self.norm = L2Normalize()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.norm(self.tower(x, mask))


class CrossModalTransformer(SequenceEstimator):
    """Transformer encoders over two ``(n, T, d)`` sequence views, contrastive objective.

    Parameters
    ----------
    n_components : int
        Shared embedding dimension (unit-norm outputs).
    d_model, n_heads, n_layers : int
        Encoder width, attention heads (``d_model % n_heads == 0``), encoder layers.
    dropout : float
        Dropout inside the encoder layers.
    temperature : float > 0
        Softmax temperature of both losses.
    infonce_weight, supcon_weight : float >= 0
        Loss weights (the supervised term needs ``y``; without labels only InfoNCE is used).
    epochs, batch_size, lr, weight_decay, grad_clip :
        AdamW training settings.
    patience, random_state, device, progress :
        As for every deep model.

    Attributes
    ----------
    module_ : ModuleDict with towers ``"view0"``, ``"view1"``
    n_features_in_, n_segments_, input_means_, input_scales_, history_, best_epoch_, stopped_early_
    """

    requires_labels = False

    def __init__(self, n_components: int = 32, d_model: int = 128, n_heads: int = 4, n_layers: int = 2,
                 dropout: float = 0.1, temperature: float = 0.1, infonce_weight: float = 1.0,
                 supcon_weight: float = 1.0, epochs: int = 30, batch_size: int = 256, lr: float = 3e-4,
                 weight_decay: float = 1e-4, grad_clip: float | None = 5.0, patience: int | None = None,
                 random_state: int | None = 0, device: str = "cpu", progress: bool = True):
        self.n_components = n_components
        self.d_model = d_model
        self.n_heads = n_heads
        self.n_layers = n_layers
        self.dropout = dropout
        self.temperature = temperature
        self.infonce_weight = infonce_weight
        self.supcon_weight = supcon_weight
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.grad_clip = grad_clip
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.progress = progress

    def _check_params(self) -> None:
        check_positive_int("n_components", self.n_components)
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.infonce_weight < 0 or self.supcon_weight < 0 or self.infonce_weight + self.supcon_weight == 0:
            raise ValueError("infonce_weight and supcon_weight must be >= 0 and not both 0")
        if int(self.d_model) % int(self.n_heads):
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")

    def _build_module(self) -> nn.Module:
        return nn.ModuleDict({
            f"view{i}": _NormalizedTower(TransformerTower(
                d, t, d_model=int(self.d_model), n_heads=int(self.n_heads), n_layers=int(self.n_layers),
                out_features=int(self.n_components), dropout=float(self.dropout)))
            for i, (d, t) in enumerate(zip(self.n_features_in_, self.n_segments_))
        })

    def fit(self, views: Sequence[np.ndarray], y: np.ndarray | None = None, validation: tuple | None = None,
            callback: Callable[[dict[str, Any]], Any] | None = None) -> "CrossModalTransformer":
        """Train both encoders.

        Parameters
        ----------
        views : [view0 (n, T0, d0), view1 (n, T1, d1)] row-paired sequence views
        y : (n,) class labels or None (then InfoNCE only)
        validation : ``(views_val, y_val)`` held-out training rows, or None
        callback : per-epoch callable
        """
        self._check_params()
        inputs = self._prepare_sequence_fit(views, y, validation)
        if inputs.y is None and self.infonce_weight == 0:
            raise ValueError("supcon_weight alone needs labels y; pass y or set infonce_weight > 0")
        self._begin_fit(inputs)
        (x0, x1), (m0, m1) = self._torch_inputs(inputs)
        labels = None if inputs.y is None else torch.as_tensor(inputs.y, device=inputs.device)
        use_supcon = labels is not None and self.supcon_weight > 0
        with seeded(inputs.seed, inputs.device) as generator:
            module = self._build_module().to(inputs.device)
            self.module_ = module
            optimizer = torch.optim.AdamW(module.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            f, g = module["view0"], module["view1"]

            def step(idx: torch.Tensor) -> dict[str, torch.Tensor]:
                idx = idx.to(inputs.device)
                # the towers end in an L2 normalisation, so the losses skip it (normalize=False)
                return contrastive_objective(f(x0[idx], m0[idx]), g(x1[idx], m1[idx]),
                                             labels[idx] if use_supcon else None,
                                             self.temperature, self.infonce_weight, self.supcon_weight)

            self._train(module, step, x0.shape[0], optimizer, generator, inputs, callback,
                        desc="CrossModalTransformer", grad_clip=self.grad_clip)
        return self
