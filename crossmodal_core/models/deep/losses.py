"""Loss functions of the deep models (torch, differentiable, batch-level).

Triplet (TNN-C-CCA)
    ``L = max(d(a, p) - d(a, n) + margin, 0)`` with ``d`` the squared euclidean distance as in
    the paper (``"euclidean"`` and ``"cosine"`` available). :func:`triplet_margin_loss` takes
    embedding triplets; :func:`triplet_loss_from_distances` takes a distance matrix and mined
    index triplets (see :mod:`.miners`), so distances are computed once per batch.
    Reductions: ``"mean"``, ``"mean_nonzero"`` (mean over triplets with positive loss, the
    pytorch-metric-learning default: easy triplets do not dilute the gradient), ``"sum"``,
    ``"none"``.

Correlation (DCCA, Andrew et al. 2013)
    ``L = -Σ_{j<=k} ρ_j``, the negative sum of the top-``k`` canonical correlations of the two
    towers' outputs ``H1 (n, o1)`` and ``H2 (n, o2)``. Covariances use ``1/(n-1)``, a ridge
    ``reg`` (absolute; Andrew et al. use 1e-4) plus ``eps`` on each diagonal. Numerics: the loss
    is computed in float64, and instead of the eigen-decomposition ``S^{-1/2}`` (whose gradient
    blows up at repeated eigenvalues) we whiten with Cholesky factors: ``T = L1⁻¹ S12 L2⁻ᵀ`` has
    the same singular values as ``S11^{-1/2} S12 S22^{-1/2}``, and ``torch.linalg.svdvals`` has
    a stable gradient even for repeated singular values.
    :func:`cluster_covariances` gives the same blocks over all **same-class** pairs of a batch
    (Cluster-CCA's sufficient statistics from class sums, no pair materialised) for C-DCCA.
    :func:`mixed_cluster_dcca_loss` (S-DCCA, LSTM-C-CCA, deep attention; the reference's
    ``cca_loss(use_cluster=True, beta)`` in ``ZenzenDatabase/CMR: objectives.py``) keeps the
    paired ``S11``, ``S22`` and mixes the cross-covariance,
    ``S12 = β·S12_pair + (1 − β)·S12_cluster``; ``β = 1`` is plain DCCA.

Contrastive
    :func:`info_nce_loss`: symmetric InfoNCE (CLIP) over row-paired embeddings.
    :func:`supervised_contrastive_loss`: cross-modal supervised contrastive loss (Khosla et al.
    2020), every other-modality item of the anchor's class is a positive.
    :func:`contrastive_objective`: their weighted sum, the objective of the contrastive aligner
    and the cross-modal transformer.

Adversarial alignment (UGAAR)
    :func:`alignment_loss`: summed per-branch MSE to the CCA targets.
    :func:`discriminator_loss`: binary cross-entropy of a (conditional) discriminator, real
    against one or more weighted kinds of fake, with one-sided label smoothing.
    :func:`generator_adversarial_loss`: the non-saturating generator loss.
    :func:`r1_penalty`: the R1 gradient penalty on real inputs (Mescheder et al. 2018).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from crossmodal_core.models.deep.distances import paired_distance

__all__ = [
    "REDUCTIONS",
    "triplet_margin_loss",
    "triplet_loss_from_distances",
    "pairwise_covariances",
    "cluster_covariances",
    "canonical_correlations",
    "dcca_loss",
    "cluster_dcca_loss",
    "mixed_cluster_covariances",
    "mixed_cluster_dcca_loss",
    "info_nce_loss",
    "supervised_contrastive_loss",
    "contrastive_objective",
    "alignment_loss",
    "discriminator_loss",
    "generator_adversarial_loss",
    "r1_penalty",
]

REDUCTIONS = ("mean", "mean_nonzero", "sum", "none")


def _reduce(losses: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    if reduction == "mean":
        return losses.mean() if losses.numel() else losses.sum()
    if reduction == "mean_nonzero":
        n = (losses > 0).sum()
        # no active triplet: zero loss that still carries a graph (sum of an empty/zero tensor)
        return losses.sum() / n.clamp_min(1)
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def triplet_margin_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                        margin: float = 0.3, distance: str = "squared_euclidean",
                        reduction: str = "mean") -> torch.Tensor:
    """``max(d(a, p) - d(a, n) + margin, 0)`` for row-aligned ``(n, d)`` triplets."""
    losses = F.relu(paired_distance(anchor, positive, distance) - paired_distance(anchor, negative, distance) + margin)
    return _reduce(losses, reduction)


def triplet_loss_from_distances(dist: torch.Tensor, anchors: torch.Tensor, positives: torch.Tensor,
                                negatives: torch.Tensor, margin: float = 0.3,
                                reduction: str = "mean_nonzero") -> torch.Tensor:
    """Triplet loss of mined triplets, reading distances from ``dist[anchor, item]``.

    Parameters
    ----------
    dist : (n_anchors, n_items) tensor
        Anchor-to-item distances (with gradient).
    anchors, positives, negatives : (t,) int64 tensors
        Row index into ``dist`` and column indices of the positive and negative items.
    """
    losses = F.relu(dist[anchors, positives] - dist[anchors, negatives] + margin)
    return _reduce(losses, reduction)


# ----------------------------------------------------------------------------- correlation
def pairwise_covariances(h1: torch.Tensor, h2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Centred ``(S11, S22, S12)`` of row-paired outputs, normalised by ``n - 1``."""
    if h1.shape[0] != h2.shape[0] or h1.shape[0] < 2:
        raise ValueError(f"need two row-paired outputs with >= 2 rows, got {tuple(h1.shape)} and {tuple(h2.shape)}")
    n = h1.shape[0]
    c1 = h1 - h1.mean(0, keepdim=True)
    c2 = h2 - h2.mean(0, keepdim=True)
    return c1.T @ c1 / (n - 1), c2.T @ c2 / (n - 1), c1.T @ c2 / (n - 1)


def cluster_covariances(h1: torch.Tensor, h2: torch.Tensor, labels1: torch.Tensor,
                        labels2: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Covariances over every same-class pair ``(h1[i], h2[j])``, from class sums (exact).

    With class sums ``s_c``, ``t_c``, counts ``a_c``, ``b_c`` and ``M = Σ_c a_c b_c`` pairs:
    ``μ1 = Σ b_c s_c / M``, ``S12 = Σ s_c t_cᵀ / M − μ1 μ2ᵀ``,
    ``S11 = Σ_c b_c Σ_{i∈c} h_i h_iᵀ / M − μ1 μ1ᵀ`` (each item weighted by the number of
    partners it has), likewise ``S22``. Cost ``O(n·o²)``.
    """
    labels2 = labels1 if labels2 is None else labels2
    n_classes = int(max(labels1.max(), labels2.max())) + 1
    a = torch.bincount(labels1, minlength=n_classes).to(h1.dtype)
    b = torch.bincount(labels2, minlength=n_classes).to(h2.dtype)
    m = (a * b).sum()
    if m <= 0:
        raise ValueError("no class is present in both views of the batch: cluster covariances are undefined")
    s = torch.zeros(n_classes, h1.shape[1], dtype=h1.dtype, device=h1.device).index_add(0, labels1, h1)
    t = torch.zeros(n_classes, h2.shape[1], dtype=h2.dtype, device=h2.device).index_add(0, labels2, h2)
    w1 = b[labels1].unsqueeze(1)  # partners of each view-1 item
    w2 = a[labels2].unsqueeze(1)
    mu1 = (b.unsqueeze(1) * s).sum(0) / m
    mu2 = (a.unsqueeze(1) * t).sum(0) / m
    s11 = (h1 * w1).T @ h1 / m - torch.outer(mu1, mu1)
    s22 = (h2 * w2).T @ h2 / m - torch.outer(mu2, mu2)
    s12 = s.T @ t / m - torch.outer(mu1, mu2)
    return s11, s22, s12


def canonical_correlations(s11: torch.Tensor, s22: torch.Tensor, s12: torch.Tensor,
                           reg: float = 1e-4, eps: float = 1e-9) -> torch.Tensor:
    """All canonical correlations (descending) of covariance blocks, ridge ``reg + eps``.

    Computed in float64 through Cholesky whitening and ``svdvals`` (see the module docstring).
    """
    if reg < 0 or eps < 0:
        raise ValueError(f"reg and eps must be >= 0, got reg={reg}, eps={eps}")
    s11, s22, s12 = s11.double(), s22.double(), s12.double()
    eye1 = torch.eye(s11.shape[0], dtype=s11.dtype, device=s11.device)
    eye2 = torch.eye(s22.shape[0], dtype=s22.dtype, device=s22.device)
    l1, info1 = torch.linalg.cholesky_ex(s11 + (reg + eps) * eye1)
    l2, info2 = torch.linalg.cholesky_ex(s22 + (reg + eps) * eye2)
    if int(info1) != 0 or int(info2) != 0:
        # NaN so the training loop reports a diverged batch instead of a cryptic linalg error
        return torch.full((min(s12.shape),), float("nan"), dtype=s12.dtype, device=s12.device)
    t = torch.linalg.solve_triangular(l1, s12, upper=False)
    t = torch.linalg.solve_triangular(l2, t.T, upper=False).T
    return torch.linalg.svdvals(t)


def _top_k_sum(corr: torch.Tensor, n_components: int | None) -> torch.Tensor:
    k = corr.shape[0] if n_components is None else int(n_components)
    if not 1 <= k <= corr.shape[0]:
        raise ValueError(f"n_components must be in [1, {corr.shape[0]}], got {n_components}")
    return corr[:k].sum()


def dcca_loss(h1: torch.Tensor, h2: torch.Tensor, n_components: int | None = None,
              reg: float = 1e-4, eps: float = 1e-9) -> torch.Tensor:
    """Negative sum of the top-``n_components`` canonical correlations of ``h1`` and ``h2``.

    Parameters
    ----------
    h1 : (n, o1) tensor, h2 : (n, o2) tensor
        Row-paired tower outputs.
    n_components : int or None
        ``k`` (``None``: all ``min(o1, o2)``).
    reg, eps : float
        Ridge added to each covariance diagonal (absolute, like Andrew et al.'s ``r1 = r2``).

    Returns
    -------
    0-d float64 tensor (``>= -k``).
    """
    return -_top_k_sum(canonical_correlations(*pairwise_covariances(h1, h2), reg=reg, eps=eps), n_components)


def cluster_dcca_loss(h1: torch.Tensor, h2: torch.Tensor, labels: torch.Tensor, n_components: int | None = None,
                      reg: float = 1e-4, eps: float = 1e-9, labels2: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`dcca_loss` over all same-class pairs of the batch (C-DCCA)."""
    return -_top_k_sum(canonical_correlations(*cluster_covariances(h1, h2, labels, labels2), reg=reg, eps=eps),
                       n_components)


def mixed_cluster_covariances(h1: torch.Tensor, h2: torch.Tensor, labels: torch.Tensor | None = None,
                              beta: float = 0.2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(S11, S22, β·S12_pair + (1 − β)·S12_cluster)`` of row-paired outputs ``(n, o1)``, ``(n, o2)``.

    ``S11``, ``S22``, ``S12_pair``: :func:`pairwise_covariances` (``n − 1`` normalised);
    ``S12_cluster``: the cross block of :func:`cluster_covariances` over every same-class pair
    of the batch (``labels`` ``(n,)`` int64, the class of each row pair). ``beta`` in
    ``[0, 1]``; at ``beta = 1`` (plain DCCA's cross-covariance) the cluster block is not
    computed and ``labels`` may be ``None``.
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    s11, s22, s12 = pairwise_covariances(h1, h2)
    if beta < 1.0:
        if labels is None:
            raise ValueError("the cluster part of the loss (beta < 1) needs class labels")
        s12 = beta * s12 + (1.0 - beta) * cluster_covariances(h1, h2, labels)[2]
    return s11, s22, s12


def mixed_cluster_dcca_loss(h1: torch.Tensor, h2: torch.Tensor, labels: torch.Tensor | None = None,
                            beta: float = 0.2, n_components: int | None = None, reg: float = 1e-4,
                            eps: float = 1e-9) -> torch.Tensor:
    """Minus the sum of the top ``n_components`` (``None``: all) canonical correlations of
    :func:`mixed_cluster_covariances` (ridge ``reg + eps`` on ``S11``, ``S22``).

    Parameters
    ----------
    h1 : (n, o1) tensor, h2 : (n, o2) tensor
        Row-paired outputs.
    labels : (n,) int64 tensor or None
        Class of each row pair (needed when ``beta < 1``).
    beta : float in [0, 1]
        Share of the paired cross-covariance (0.2, the reference's).
    n_components, reg, eps : as for :func:`dcca_loss`.

    Returns
    -------
    0-d float64 tensor (``>= -k``).
    """
    return -_top_k_sum(canonical_correlations(*mixed_cluster_covariances(h1, h2, labels, beta), reg=reg, eps=eps),
                       n_components)


# ----------------------------------------------------------------------------- contrastive
def _logits(za: torch.Tensor, zb: torch.Tensor, temperature: float, normalize: bool) -> torch.Tensor:
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if normalize:
        za, zb = F.normalize(za, dim=1), F.normalize(zb, dim=1)
    return za @ zb.T / temperature


def info_nce_loss(za: torch.Tensor, zb: torch.Tensor, temperature: float = 0.1,
                  normalize: bool = True) -> torch.Tensor:
    """Symmetric InfoNCE: ``(CE(za·zbᵀ/τ, diag) + CE(zb·zaᵀ/τ, diag)) / 2``.

    Row ``i`` of ``za`` and row ``i`` of ``zb`` are the positive pair; every other row of the
    other modality is a negative. Cosine similarities when ``normalize``.
    """
    if za.shape[0] != zb.shape[0]:
        raise ValueError(f"InfoNCE needs row-paired batches, got {za.shape[0]} and {zb.shape[0]} rows")
    logits = _logits(za, zb, temperature, normalize)
    target = torch.arange(za.shape[0], device=za.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def _supcon_direction(logits: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    n_pos = positive.sum(1)
    has = n_pos > 0
    per_anchor = -(log_prob * positive).sum(1)[has] / n_pos[has]
    return per_anchor.mean() if per_anchor.numel() else logits.sum() * 0.0


def supervised_contrastive_loss(za: torch.Tensor, zb: torch.Tensor, labels_a: torch.Tensor,
                                labels_b: torch.Tensor | None = None, temperature: float = 0.1,
                                normalize: bool = True) -> torch.Tensor:
    """Cross-modal supervised contrastive loss, symmetric.

    For an anchor ``i`` of modality a with positives ``P(i) = {j : labels_b[j] == labels_a[i]}``::

        ℓ_i = -(1/|P(i)|) Σ_{p∈P(i)} log( exp(s_ip/τ) / Σ_j exp(s_ij/τ) )

    averaged over anchors with at least one positive, then averaged with the b->a direction.
    """
    labels_b = labels_a if labels_b is None else labels_b
    logits = _logits(za, zb, temperature, normalize)
    positive = (labels_a.unsqueeze(1) == labels_b.unsqueeze(0)).to(logits.dtype)
    return 0.5 * (_supcon_direction(logits, positive) + _supcon_direction(logits.T, positive.T))


def contrastive_objective(za: torch.Tensor, zb: torch.Tensor, labels: torch.Tensor | None = None,
                          temperature: float = 0.1, infonce_weight: float = 1.0, supcon_weight: float = 1.0,
                          normalize: bool = False) -> dict[str, torch.Tensor]:
    """``infonce_weight · InfoNCE + supcon_weight · SupCon`` of a row-paired batch, as a training step's dict.

    Parameters
    ----------
    za, zb : (n, k) tensors
        Row-paired embeddings (already L2-normalised unless ``normalize``).
    labels : (n,) int64 tensor or None
        Class of each row pair; the supervised term is used only with labels and
        ``supcon_weight > 0``, InfoNCE only with ``infonce_weight > 0``.
    temperature : float > 0
        Softmax temperature of both terms.

    Returns
    -------
    dict: ``"loss"`` (0-d, differentiable), plus the detached ``"infonce"`` / ``"supcon"``
    terms that were used (logged per epoch by :func:`~.training.fit_loop`).
    """
    out: dict[str, torch.Tensor] = {}
    loss = za.new_zeros(())
    if infonce_weight > 0:
        nce = info_nce_loss(za, zb, temperature, normalize=normalize)
        loss = loss + infonce_weight * nce
        out["infonce"] = nce.detach()
    if labels is not None and supcon_weight > 0:
        sc = supervised_contrastive_loss(za, zb, labels, labels, temperature, normalize=normalize)
        loss = loss + supcon_weight * sc
        out["supcon"] = sc.detach()
    out["loss"] = loss
    return out


# ----------------------------------------------------------------------------- adversarial (UGAAR)
def alignment_loss(embeddings: Sequence[torch.Tensor], targets: Sequence[torch.Tensor]) -> torch.Tensor:
    """Sum over branches of the mean squared error between an embedding and its target.

    Parameters
    ----------
    embeddings, targets : sequences of ``(batch, k)`` tensors, paired element-wise

    Returns
    -------
    0-d tensor: ``sum_b mean_{i,j} (e_b[i, j] - t_b[i, j])^2``
    """
    if len(embeddings) != len(targets):
        raise ValueError("alignment_loss needs one target per embedding")
    return sum(F.mse_loss(e, t) for e, t in zip(embeddings, targets))


def discriminator_loss(real_logits: torch.Tensor, fake_logits: Sequence[torch.Tensor],
                       fake_weights: Sequence[float] | None = None, label_smoothing: float = 0.0) -> torch.Tensor:
    """Binary cross-entropy of the discriminator: real -> ``1 - label_smoothing``, fake -> 0.

    Parameters
    ----------
    real_logits : (n,) tensor
        Discriminator logits of real inputs.
    fake_logits : sequence of (n_f,) tensors
        Several kinds of fake input (generated pairs, mismatched real pairs), each averaged on
        its own.
    fake_weights : sequence of float or None
        Weight of each kind (default 1 each); a weight of 0 drops that term.
    label_smoothing : float in [0, 0.5)
        One-sided label smoothing of the real target (Salimans et al. 2016).

    Returns
    -------
    0-d tensor: ``BCE(real, 1 - s) + sum_f w_f BCE(fake_f, 0)``
    """
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    fake_weights = [1.0] * len(fake_logits) if fake_weights is None else list(fake_weights)
    real_target = torch.full_like(real_logits, 1.0 - label_smoothing)
    loss = F.binary_cross_entropy_with_logits(real_logits, real_target)
    for logits, w in zip(fake_logits, fake_weights):
        if w:
            loss = loss + w * F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))
    return loss


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``-mean log sigmoid(D(fake))`` (Goodfellow et al. 2014).

    Parameters
    ----------
    fake_logits : (n,) tensor, discriminator logits of generated inputs

    Returns
    -------
    0-d tensor
    """
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def r1_penalty(real_logits: torch.Tensor, real_inputs: torch.Tensor) -> torch.Tensor:
    """R1 penalty ``mean_i ||d D(x_i) / d x_i||^2 / 2`` on real inputs (Mescheder et al. 2018).

    Parameters
    ----------
    real_logits : (n,) tensor, ``D(real_inputs)``
    real_inputs : (n, d) tensor with ``requires_grad=True`` that ``real_logits`` depends on

    Returns
    -------
    0-d tensor (differentiable: the gradient graph is kept for the penalty's own backward)
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real_inputs, create_graph=True)
    return 0.5 * grad.pow(2).sum(dim=1).mean()
