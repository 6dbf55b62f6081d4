"""ACMR: adversarial cross-modal retrieval (Wang, Yang, Xu, Hanjalic, Shen; ACM MM 2017).

Source: the paper and its public reference code ``sunpeng981712364/ACMR_demo``
(``models/adv_crossmodal_triplet_wiki.py``, ``models/adv_crossmodal_simple_wiki.py``).

Model (``k = n_components``, 40 in the paper)
---------------------------------------------
- *Feature projectors*, one per modality: tanh MLPs into the shared ``k``-d space with a tanh
  output (reference: image ``4096 → 512 → 100 → 40``; text ``5000 → 40 → 100 → 40``). Our
  inputs are audio 128-d and visual 1024-d, so both projectors use the image branch's hidden
  widths ``(512, 100)`` (``hidden``); the text branch's 40-wide first layer looks like a slip
  of the reference script and would be narrower than our 128-d audio input.
- *Label classifier*: one linear layer ``k → C`` shared by both modalities, softmax cross-
  entropy on both (``L_label``, mean over the batch of the sum over the two views).
- *Modality classifier* behind a gradient-reversal layer: ``k → k/2 → k/4 → 2`` **linear**
  layers (the reference builds them under ``activation_fn=None``, so it is a linear
  classifier), softmax cross-entropy on "which modality" (``L_adv``, mean of both views).
  GRL weight ``λ = 2 / (1 + exp(-10 p)) - 1`` with ``p = (epoch - 1) / epochs``, fixed within
  an epoch (the reference's schedule).
- *Structure preservation* (``variant``):
  ``"triplet"`` (reference default, 50 epochs): with the positive the paired item and the
  negative, for each anchor, the other-modality partner of the most input-cosine-similar
  *other-label* item of the anchor's modality in the batch (the reference's mining),
  ``L_tri = max(0, m + α Σ_b ½‖e_v − e_w⁺‖² − Σ_b ½‖e_v − e_w⁻‖²) + (same with v, w swapped)``,
  a hinge on **batch sums** (``tf.nn.l2_loss``, as the reference has it), ``m = 0.1``, ``α = 5``;
  ``L_emb = 100 · L_label + L_tri``.
  ``"simple"`` (200 epochs): ``L_emb = 100 · L_label + ‖E_v − E_w‖_F + 0.02 · L_dis``, where
  ``L_dis = mean_{i,j} max(0, 0.1 − [y_i ≠ y_j] · D_ij)`` over the batch's ``B × B`` pairs,
  with the reference's ``D_ij = Σ e_v,i − e_v,i · e_w,j + Σ e_w,j`` (its "distance map").
- *Training*: one Adam (lr 1e-4, β1 0.5, batch 64) step per batch on ``L_emb + L_adv``; the
  GRL makes the modality classifier minimise ``L_adv`` and the projectors maximise ``λ L_adv``,
  which is the paper's minimax (``min_θP L_emb − λ L_adv``, ``min_θD L_adv``).

Departures (each a parameter)
-----------------------------
- The released triplet script runs two var-list-restricted Adam ops, ``L_emb`` on the
  projectors and ``L_adv`` on the modality classifier only, so the reversed gradient never
  reaches the projectors there (the ``total_train_op`` that would use it is built but not
  run). We follow the paper: the adversarial gradient does reach the projectors. Set
  ``adv_weight=0`` for the released script's behaviour on the projectors (the classifier then
  trains on nothing).
- The modality labels are view 0 → 0, view 1 → 1 (the reference assigns them swapped; a
  relabelling, the same game).
- Inputs are standardised per feature (train statistics), as in every model here.
- Retrieval is cosine on the ``k``-d embeddings (the reference ranks by cosine too).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from crossmodal_core.models.deep._base import TorchCrossModalEstimator, check_positive_int
from crossmodal_core.models.deep.gradient_reversal import GradientReversal, grl_lambda
from crossmodal_core.models.deep.towers import make_tower
from crossmodal_core.models.deep.training import minibatches, seeded

__all__ = ["ACMR", "AdversarialProjectors", "acmr_triplet_loss", "acmr_simple_loss", "modality_loss",
           "hardest_other_label", "VARIANTS"]

#: structure-preservation variants of :class:`ACMR`
VARIANTS = ("triplet", "simple")


# ----------------------------------------------------------------------------- loss terms
def modality_loss(logits0: torch.Tensor, logits1: torch.Tensor) -> torch.Tensor:
    """Modality-classifier cross-entropy: view-0 rows are class 0, view-1 rows class 1.

    ``logits0`` ``(b0, 2)``, ``logits1`` ``(b1, 2)``; returns the mean of the two views' mean CE.
    """
    t0 = torch.zeros(logits0.shape[0], dtype=torch.long, device=logits0.device)
    t1 = torch.ones(logits1.shape[0], dtype=torch.long, device=logits1.device)
    return 0.5 * (F.cross_entropy(logits0, t0) + F.cross_entropy(logits1, t1))


def hardest_other_label(x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """For each row of ``x`` ``(b, d)``, the index of the most cosine-similar row with another
    label (the reference's negative mining; ``(b,)`` int64). A row whose batch holds no other
    label gets its own index (its triplet then has the positive as negative and only costs
    the margin)."""
    xn = F.normalize(x, dim=1)
    sim = xn @ xn.T
    other = labels.unsqueeze(0) != labels.unsqueeze(1)
    # the reference multiplies by the mask (zeros for same-label items); -inf keeps negative
    # cosines of other-label items winnable over same-label zeros
    sim = sim.masked_fill(~other, float("-inf"))
    idx = sim.argmax(dim=1)
    none = ~other.any(dim=1)
    return torch.where(none, torch.arange(x.shape[0], device=x.device), idx)


def acmr_triplet_loss(ev: torch.Tensor, ew: torch.Tensor, ew_neg: torch.Tensor, ev_neg: torch.Tensor,
                      margin: float = 0.1, alpha: float = 5.0) -> torch.Tensor:
    """ACMR's triplet term on batch sums (``tf.nn.l2_loss = Σ x² / 2``)::

        max(0, m + α·½Σ‖ev − ew‖² − ½Σ‖ev − ew_neg‖²) + max(0, m + α·½Σ‖ew − ev‖² − ½Σ‖ew − ev_neg‖²)

    ``ev``, ``ew``: paired embeddings ``(b, k)`` (the positives of each other); ``ew_neg``: the
    negative text/visual for each ``ev`` row, ``ev_neg`` the negative for each ``ew`` row.
    """
    pos = 0.5 * (ev - ew).pow(2).sum()
    v_neg = 0.5 * (ev - ew_neg).pow(2).sum()
    w_neg = 0.5 * (ew - ev_neg).pow(2).sum()
    return F.relu(margin + alpha * pos - v_neg) + F.relu(margin + alpha * pos - w_neg)


def acmr_simple_loss(ev: torch.Tensor, ew: torch.Tensor, labels: torch.Tensor, margin: float = 0.1,
                     dissimilar_weight: float = 0.02) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ACMR's simple variant: ``‖E_v − E_w‖_F + w · mean_ij max(0, m − [y_i ≠ y_j] D_ij)``.

    ``D_ij = Σ_c ev[i, c] − ev[i] · ew[j] + Σ_c ew[j, c]`` (the reference's distance map).
    Returns ``(total, similar, dissimilar)``.
    """
    dist = ev.sum(1, keepdim=True) - ev @ ew.T + ew.sum(1).unsqueeze(0)
    mask = (labels.unsqueeze(1) != labels.unsqueeze(0)).to(ev.dtype)
    dissimilar = F.relu(margin - mask * dist).mean()
    similar = torch.linalg.norm(ev - ew)
    return similar + dissimilar_weight * dissimilar, similar, dissimilar


# ----------------------------------------------------------------------------- network
class AdversarialProjectors(nn.Module):
    """Two tanh projectors, an optional shared label classifier and a GRL modality classifier.

    ``projectors[f"view{i}"]``: ``(b, d_i) → (b, k)``; ``label_classifier``: ``(b, k) → (b, C)``
    (absent when ``n_classes == 0``); ``modality(e)``: ``(b, k) → (b, 2)`` logits through the GRL.
    """

    def __init__(self, in_dims: Sequence[int], hidden: Sequence[int], n_components: int, n_classes: int):
        super().__init__()
        k = int(n_components)
        self.projectors = nn.ModuleDict({
            f"view{i}": make_tower(int(d), hidden, k, activation="tanh", output_activation="tanh")
            for i, d in enumerate(in_dims)})
        self.label_classifier = nn.Linear(k, int(n_classes)) if n_classes else None
        self.grl = GradientReversal(0.0)
        h1, h2 = max(1, k // 2), max(1, k // 4)
        self.modality_classifier = nn.Sequential(nn.Linear(k, h1), nn.Linear(h1, h2), nn.Linear(h2, 2))

    def modality(self, e: torch.Tensor) -> torch.Tensor:
        return self.modality_classifier(self.grl(e))


# ----------------------------------------------------------------------------- estimator
class _AdversarialProjectorEstimator(TorchCrossModalEstimator):
    """Shared fit / transform / checkpoint of ACMR and UCAL; subclasses give the embedding loss."""

    def _n_classes(self, y: np.ndarray | None) -> int:
        return 0

    def _build_module(self) -> nn.Module:
        return AdversarialProjectors(self.n_features_in_, tuple(self.hidden), self.n_components,
                                     getattr(self, "n_classes_", 0))

    def _transform_arrays(self, views: list[np.ndarray]) -> list[np.ndarray]:
        return self._run_towers(self.module_.projectors, self._scaled_inputs(views))

    def _check_common(self) -> None:
        check_positive_int("n_components", self.n_components)
        if self.adv_weight < 0:
            raise ValueError(f"adv_weight must be >= 0, got {self.adv_weight}")

    def _embedding_loss(self, module, x0, x1, e0, e1, labels) -> tuple[torch.Tensor, dict[str, Any]]:
        raise NotImplementedError  # pragma: no cover

    def fit(self, views: Sequence[np.ndarray], y: np.ndarray | None = None, validation: tuple | None = None,
            callback: Callable[[dict[str, Any]], Any] | None = None):
        """Train projectors, classifiers and the adversary.

        Parameters
        ----------
        views : [view0 (n, d0), view1 (n, d1)] row-paired flat features
        y : (n,) class labels (ACMR needs them; UCAL ignores them)
        validation : ``(views_val, y_val)`` held-out training rows, or None
        callback : per-epoch callable (see :func:`.training.fit_loop`)
        """
        self._check_params()
        inputs = self._prepare_fit(views, y if self.requires_labels else None, validation)
        self._begin_fit(inputs)
        self.n_classes_ = self._n_classes(inputs.y)
        x0, x1 = (torch.as_tensor(x, device=inputs.device) for x in self._fit_input_scaling(inputs.views))
        labels = None if inputs.y is None else torch.as_tensor(inputs.y, device=inputs.device)
        n = x0.shape[0]
        with seeded(inputs.seed, inputs.device) as generator:
            module = self._build_module().to(inputs.device)
            self.module_ = module
            optimizer = torch.optim.Adam(module.parameters(), lr=self.lr, betas=(self.beta1, 0.999))
            f, g = module.projectors["view0"], module.projectors["view1"]

            def batches(epoch: int):
                module.grl.lam = grl_lambda((epoch - 1) / self.epochs)
                return minibatches(n, min(int(self.batch_size), n), generator)

            def step(idx: torch.Tensor) -> dict[str, Any]:
                idx = idx.to(inputs.device)
                b0, b1 = x0[idx], x1[idx]
                e0, e1 = f(b0), g(b1)
                emb, logs = self._embedding_loss(module, b0, b1, e0, e1, None if labels is None else labels[idx])
                adv = modality_loss(module.modality(e0), module.modality(e1))
                logs.update(loss=emb + self.adv_weight * adv, emb_loss=emb.detach(), adv_loss=adv.detach(),
                            grl_lambda=module.grl.lam)
                return logs

            self._train(module, step, n, optimizer, generator, inputs, callback, desc=type(self).__name__,
                        batches=batches)
        return self

    def _fitted_meta(self) -> dict[str, Any]:
        return {"n_classes_": int(self.n_classes_)}

    def _set_fitted_meta(self, meta: dict[str, Any]) -> None:
        self.n_classes_ = int(meta["n_classes_"])

    def _numpy_state(self) -> dict[str, np.ndarray]:
        return self._input_scaling_state()

    def _set_numpy_state(self, arrays: dict[str, np.ndarray]) -> None:
        self._set_input_scaling_state(arrays)
        self._reject_unexpected_arrays(arrays)


class ACMR(_AdversarialProjectorEstimator):
    """Adversarial cross-modal retrieval (see the module docstring for the model and sources).

    Parameters
    ----------
    variant : {"triplet", "simple"}
        Structure-preservation term (module docstring).
    n_components : int
        Shared space width ``k`` (40).
    hidden : tuple of int
        Hidden widths of both tanh projectors ((512, 100)).
    label_weight : float
        Weight of ``L_label`` (100).
    margin, alpha : float
        Triplet margin ``m`` (0.1) and positive weight ``α`` (5); ``margin`` is also the simple
        variant's dissimilar margin.
    dissimilar_weight : float
        Simple variant: weight of ``L_dis`` (0.02).
    adv_weight : float >= 0
        Weight of ``L_adv`` (1; 0 drops the adversary).
    epochs : int or None
        ``None``: the reference's 50 (triplet) / 200 (simple).
    batch_size, lr, beta1 :
        Adam settings (64, 1e-4, 0.5).
    patience, random_state, device, progress :
        As for every deep model.

    Attributes
    ----------
    module_ : :class:`AdversarialProjectors`
    n_classes_ : classes of the label classifier
    input_means_, input_scales_, history_ (``loss, emb_loss, adv_loss, grl_lambda, label_loss,
    structure_loss`` per epoch), best_epoch_, stopped_early_
    """

    requires_labels = True

    def __init__(self, variant: str = "triplet", n_components: int = 40, hidden: tuple[int, ...] = (512, 100),
                 label_weight: float = 100.0, margin: float = 0.1, alpha: float = 5.0,
                 dissimilar_weight: float = 0.02, adv_weight: float = 1.0, epochs: int | None = None,
                 batch_size: int = 64, lr: float = 1e-4, beta1: float = 0.5, patience: int | None = None,
                 random_state: int | None = 0, device: str = "cpu", progress: bool = True):
        self.variant = variant
        self.n_components = n_components
        self.hidden = hidden
        self.label_weight = label_weight
        self.margin = margin
        self.alpha = alpha
        self.dissimilar_weight = dissimilar_weight
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
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        self._check_common()

    @property
    def _epochs(self) -> int:
        return int(self.epochs) if self.epochs is not None else (50 if self.variant == "triplet" else 200)

    def fit(self, views, y=None, validation=None, callback=None):
        """See :meth:`_AdversarialProjectorEstimator.fit`; ``y`` is required."""
        requested = self.epochs
        self.epochs = self._epochs
        try:
            return super().fit(views, y, validation, callback)
        finally:
            self.epochs = requested

    def _n_classes(self, y: np.ndarray | None) -> int:
        return int(y.max()) + 1

    def _embedding_loss(self, module, x0, x1, e0, e1, labels):
        clf = module.label_classifier
        label = F.cross_entropy(clf(e0), labels) + F.cross_entropy(clf(e1), labels)
        if self.variant == "triplet":
            # negatives mined on the (standardised) inputs, as the reference mines on raw features
            neg_for_v = hardest_other_label(x0, labels)  # most similar other-label visual -> its text
            neg_for_w = hardest_other_label(x1, labels)
            structure = acmr_triplet_loss(e0, e1, e1[neg_for_v], e0[neg_for_w], self.margin, self.alpha)
        else:
            structure, _, _ = acmr_simple_loss(e0, e1, labels, self.margin, self.dissimilar_weight)
        return self.label_weight * label + structure, {"label_loss": label.detach(),
                                                       "structure_loss": structure.detach()}
