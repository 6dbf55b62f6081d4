"""Loss terms of the grant's VAE model (:mod:`~crossmodal_core.models.deep.vae`), as released in
``zhangjiwei-japan/visual-audio-cross-modal-retrieval: loss_functions.py``.

Shapes: features ``(b, k)``, one-hot labels ``(b, C)``; each function returns a 0-d tensor.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["gaussian_kl", "vae_view_loss", "label_regression_loss", "label_likelihood_loss",
           "paired_distance_loss", "center_loss", "update_centers"]


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ (σ² + μ² − 1 − log σ²)``, summed over rows and dims
    (the reference's ``KLD``)."""
    return 0.5 * torch.sum(logvar.exp() + mu.pow(2) - 1.0 - logvar)


def vae_view_loss(recon: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """One view's ``MSE(recon, x) + KL`` (``loss_vae``: mean-squared error, summed KL)."""
    return F.mse_loss(recon, x) + gaussian_kl(mu, logvar)


def label_regression_loss(pred: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """``mean_i ‖p_i − y_i‖``: the classifier's outputs regress onto the one-hot labels
    (``discriminate``, per view)."""
    return (pred - onehot).pow(2).sum(1).sqrt().mean()


def _half_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    na = a.pow(2).sum(1, keepdim=True).sqrt()
    nb = b.pow(2).sum(1, keepdim=True).sqrt()
    return a @ b.T / (na @ nb.T).clamp(min=1e-6) / 2.0


def label_likelihood_loss(z1: torch.Tensor, z2: torch.Tensor, onehot1: torch.Tensor,
                          onehot2: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of the label-similarity matrix under cosine logits.

    Rows are centred on their own mean (``z − mean(z, dim=1)``); ``θ = cos / 2``; with
    ``S = L Lᵀ`` (1 for same-class pairs), each of the three blocks 11, 12, 22 adds
    ``mean(log(1 + e^θ) − S θ)`` (``correlation1 + correlation2 + correlation3``).
    """
    c1 = z1 - z1.mean(dim=1, keepdim=True)
    c2 = z2 - z2.mean(dim=1, keepdim=True)
    total = z1.new_zeros(())
    for a, b, la, lb in ((c1, c1, onehot1, onehot1), (c1, c2, onehot1, onehot2), (c2, c2, onehot2, onehot2)):
        theta = _half_cosine(a, b)
        s = la @ lb.T
        total = total + (F.softplus(theta) - s * theta).mean()
    return total


def paired_distance_loss(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """``mean_i ‖z1_i − z2_i‖`` (``distance``)."""
    return (z1 - z2).pow(2).sum(1).sqrt().mean()


def center_loss(z: torch.Tensor, labels: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Centre loss (Wen et al. 2016): ``½ mean_i ‖z_i − c_{y_i}‖²`` with fixed ``centers`` ``(C, k)``."""
    return 0.5 * (z - centers[labels]).pow(2).sum(1).mean()


@torch.no_grad()
def update_centers(centers: torch.Tensor, z: torch.Tensor, labels: torch.Tensor, alpha: float = 0.5) -> None:
    """Wen et al.'s centre update in place: ``c_j ← c_j − α Σ_{y_i = j}(c_j − z_i) / (1 + n_j)``."""
    n_classes = centers.shape[0]
    counts = torch.bincount(labels, minlength=n_classes).to(z.dtype)
    sums = torch.zeros_like(centers).index_add(0, labels, z.detach())
    delta = (counts.unsqueeze(1) * centers - sums) / (1.0 + counts.unsqueeze(1))
    centers -= alpha * delta
