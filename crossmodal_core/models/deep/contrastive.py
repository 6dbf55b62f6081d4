"""ContrastiveAligner: projection heads trained with symmetric InfoNCE (+ supervised contrastive).

Each modality gets an MLP projection head into a shared ``n_components``-d space; outputs are
L2-normalised, so retrieval by cosine is retrieval by dot product. The loss on a batch of
row-paired items is ``infonce_weight · InfoNCE + supcon_weight · SupCon``:

- symmetric InfoNCE (CLIP): the paired item is the positive, every other item of the other
  modality in the batch a negative; needs no labels.
- cross-modal supervised contrastive (Khosla et al. 2020): every other-modality item of the
  anchor's class is a positive; used when ``fit`` gets labels ``y`` and ``supcon_weight > 0``.

For class-level retrieval (VEGAS-style) the supervised term matters: pure InfoNCE pushes apart
same-class items that are not paired.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from crossmodal_core.models.deep._base import TorchCrossModalEstimator, check_positive_int
from crossmodal_core.models.deep.losses import contrastive_objective
from crossmodal_core.models.deep.training import seeded

__all__ = ["ContrastiveAligner"]


class ContrastiveAligner(TorchCrossModalEstimator):
    """Contrastive cross-modal aligner.

    Parameters
    ----------
    n_components : int
        Shared embedding dimension.
    hidden : tuple of int
        Hidden widths of each projection head.
    activation, dropout, batch_norm :
        Head settings (:func:`~crossmodal_core.models.deep.towers.make_tower`).
    temperature : float
        Softmax temperature ``τ`` of both losses (0.3: validation MAP 0.989 vs 0.963 for 0.1 on
        the VEGAS-shaped synthetic set, validation rows held out from training).
    infonce_weight, supcon_weight : float >= 0
        Loss weights (the supervised term needs ``y``; without labels only InfoNCE is used).
    epochs, batch_size, lr, weight_decay :
        AdamW training settings.
    patience, random_state, device, progress :
        As for every deep model; ``device="auto"`` (default): a CUDA GPU when present, else the CPU.

    Attributes
    ----------
    module_ : ModuleDict with heads ``"view0"`` and ``"view1"``
    input_means_, input_scales_ : input standardisation
    history_, best_epoch_, stopped_early_
    """

    accepts_images = True  # image views get CNN towers (towers.make_tower picks by rank)
    requires_labels = False

    def __init__(self, n_components: int = 64, hidden: tuple[int, ...] = (512,), activation: str = "relu",
                 dropout: float = 0.1, batch_norm: bool = False, temperature: float = 0.3,
                 infonce_weight: float = 1.0, supcon_weight: float = 1.0, epochs: int = 20,
                 batch_size: int = 512, lr: float = 1e-3, weight_decay: float = 1e-4,
                 patience: int | None = None, random_state: int | None = 0, device: str = "auto",
                 progress: bool = True):
        self.n_components = n_components
        self.hidden = hidden
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.temperature = temperature
        self.infonce_weight = infonce_weight
        self.supcon_weight = supcon_weight
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.progress = progress

    def _check_params(self) -> None:
        check_positive_int("n_components", self.n_components)
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.infonce_weight < 0 or self.supcon_weight < 0 or self.infonce_weight + self.supcon_weight == 0:
            raise ValueError("infonce_weight and supcon_weight must be >= 0 and not both 0")

    def _build_module(self) -> nn.Module:
        return self._towers({f"view{i}": d for i, d in enumerate(self.n_features_in_)}, self.n_components,
                            normalize=True)

    def _transform_arrays(self, views: list[np.ndarray]) -> list[np.ndarray]:
        return self._run_towers(self.module_, self._scaled_inputs(views))

    def fit(self, views: Sequence[np.ndarray], y: np.ndarray | None = None,
            validation: tuple | None = None, callback: Callable[[dict[str, Any]], Any] | None = None
            ) -> "ContrastiveAligner":
        """Train the heads.

        Parameters
        ----------
        views : [view0 (n, d0), view1 (n, d1)] row-paired
        y : (n,) class labels or None (then InfoNCE only)
        validation : ``(views_val, y_val)`` held-out training data, or None
        callback : per-epoch callable
        """
        self._check_params()
        inputs = self._prepare_fit(views, y, validation)
        if inputs.y is None and self.infonce_weight == 0:
            raise ValueError("supcon_weight alone needs labels y; pass y or set infonce_weight > 0")
        self._begin_fit(inputs)
        x0, x1 = (torch.as_tensor(x, device=inputs.device) for x in self._fit_input_scaling(inputs.views))
        labels = None if inputs.y is None else torch.as_tensor(inputs.y, device=inputs.device)
        use_supcon = labels is not None and self.supcon_weight > 0
        with seeded(inputs.seed, inputs.device) as generator:
            module = self._build_module().to(inputs.device)
            self.module_ = module
            optimizer = torch.optim.AdamW(module.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            f, g = module["view0"], module["view1"]

            def step(idx: torch.Tensor) -> dict[str, torch.Tensor]:
                idx = idx.to(inputs.device)
                # heads already L2-normalise, so the losses skip it (normalize=False)
                return contrastive_objective(f(x0[idx]), g(x1[idx]), labels[idx] if use_supcon else None,
                                             self.temperature, self.infonce_weight, self.supcon_weight)

            self._train(module, step, x0.shape[0], optimizer, generator, inputs, callback,
                        desc="ContrastiveAligner")
        return self

    def _numpy_state(self) -> dict[str, np.ndarray]:
        return self._input_scaling_state()

    def _set_numpy_state(self, arrays: dict[str, np.ndarray]) -> None:
        self._set_input_scaling_state(arrays)
        self._reject_unexpected_arrays(arrays)
