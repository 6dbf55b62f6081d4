"""UCAL: unsupervised cross-modal retrieval through adversarial learning — a reconstruction.

Source: He, Chen, Wang, Huang, "Unsupervised cross-modal retrieval through adversarial
learning", ICME 2017. **No public code exists**, and the paper's full text is not in our
sources: this model is a reconstruction from the abstract, which describes (1) a projector
per modality into a common space and (2) a modality classifier trained adversarially
against them, (3) without any labels, the paired items being the only supervision.
Everything beyond those three points is our choice, taken from ACMR
(:mod:`~crossmodal_core.models.deep.acmr`, the closest published design with code) so the
two differ only in what supervision they use:

- projectors: ACMR's tanh MLPs (``hidden=(512, 100)``, ``k = 40``, tanh output);
- modality classifier: ACMR's linear ``k → k/2 → k/4 → 2`` behind a gradient-reversal layer
  with Ganin's schedule ``λ = 2 / (1 + exp(-10 p)) − 1`` (our choice: the abstract says
  "adversarial", not how);
- structure term without labels (our choice): ACMR's triplet on batch sums with the
  paired item as the positive and, as the negative of each anchor, the partner of its most
  input-cosine-similar *other* item in the batch (instance-level hard negatives, since no
  labels are known)::

      L_pair = max(0, m + α ½Σ‖e_v − e_w‖² − ½Σ‖e_v − e_w⁻‖²) + (v and w swapped)

  with ACMR's ``m = 0.1`` and ``α = 5``; plus ``pair_weight`` times the mean paired squared
  distance ``mean_i ‖e_v,i − e_w,i‖²`` so pairs are pulled together even when the hinge is
  inactive;
- training: ACMR's Adam (lr 1e-4, β1 0.5, batch 64), 50 epochs.

``fit`` ignores ``y`` (unsupervised); validation MAP uses the validation labels if given.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from crossmodal_core.models.deep.acmr import _AdversarialProjectorEstimator, acmr_triplet_loss, hardest_other_label

__all__ = ["UCAL"]


class UCAL(_AdversarialProjectorEstimator):
    """Unsupervised adversarial cross-modal projector (reconstruction; module docstring).

    Parameters
    ----------
    n_components, hidden : shared width (40) and projector hidden widths ((512, 100))
    margin, alpha : triplet margin (0.1) and positive weight (5)
    pair_weight : weight of the mean paired squared distance (1)
    adv_weight : weight of the adversarial modality loss (1; 0 drops it)
    epochs, batch_size, lr, beta1 : Adam settings (50, 64, 1e-4, 0.5)
    patience, random_state, device, progress : as for every deep model

    Attributes
    ----------
    module_ : :class:`~crossmodal_core.models.deep.acmr.AdversarialProjectors` (no label classifier)
    input_means_, input_scales_, history_, best_epoch_, stopped_early_
    """

    requires_labels = False

    def __init__(self, n_components: int = 40, hidden: tuple[int, ...] = (512, 100), margin: float = 0.1,
                 alpha: float = 5.0, pair_weight: float = 1.0, adv_weight: float = 1.0, epochs: int = 50,
                 batch_size: int = 64, lr: float = 1e-4, beta1: float = 0.5, patience: int | None = None,
                 random_state: int | None = 0, device: str = "cpu", progress: bool = True):
        self.n_components = n_components
        self.hidden = hidden
        self.margin = margin
        self.alpha = alpha
        self.pair_weight = pair_weight
        self.adv_weight = adv_weight
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.beta1 = beta1
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.progress = progress

    def _check_params(self) -> None:
        self._check_common()
        if self.pair_weight < 0:
            raise ValueError(f"pair_weight must be >= 0, got {self.pair_weight}")

    def _embedding_loss(self, module, x0, x1, e0, e1, labels) -> tuple[torch.Tensor, dict[str, Any]]:
        # each item is its own "label": the hardest other item of the batch is the negative
        ids = torch.arange(x0.shape[0], device=x0.device)
        triplet = acmr_triplet_loss(e0, e1, e1[hardest_other_label(x0, ids)], e0[hardest_other_label(x1, ids)],
                                    self.margin, self.alpha)
        pair = (e0 - e1).pow(2).sum(1).mean()
        return triplet + self.pair_weight * pair, {"triplet_loss": triplet.detach(), "pair_loss": pair.detach()}

    def fit(self, views, y: np.ndarray | None = None, validation=None, callback=None) -> "UCAL":
        """Train without labels (``y`` is ignored); see the base ``fit`` for the arguments."""
        return super().fit(views, None, validation, callback)
