"""Loss terms of the hashing models (:mod:`~crossmodal_core.models.deep.hashing`).

Codes are relaxed in training (``tanh`` in ``(-1, 1)``, or ``sigmoid`` in ``(0, 1)`` for
UGACH) and binarised by ``sign`` (UGACH: ``> 0.5``) at retrieval. Every function takes ``(b, bits)``
tensors and returns a 0-d tensor; reductions follow the reference code (sums, not means,
where the reference sums), so the published loss weights keep their meaning.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["quantization_loss", "agah_balance_loss", "code_map_loss", "cosine_triplet_all_loss",
           "ugach_hinge", "ugach_reward", "wgan_gradient_penalty"]


def quantization_loss(h: torch.Tensor) -> torch.Tensor:
    """``Σ (h − sign h)²``: distance of the relaxed codes from the binary ones (AGAH ``loss_quant``)."""
    return (h - torch.sign(h)).pow(2).sum()


def agah_balance_loss(h: torch.Tensor) -> torch.Tensor:
    """AGAH's balance term as released (``loss3``): ``Σ_i 1 / (1 + exp(cos(|h_i|, 1)))``.

    ``cos(|h_i|, 1)`` is 1 exactly when every bit of ``h_i`` has the same magnitude, so the
    term balances the bits' magnitudes (no bit is left near 0 while others saturate).
    """
    theta = F.cosine_similarity(h.abs(), torch.ones_like(h), dim=1)
    return torch.sigmoid(-theta).sum()  # 1 / (1 + e^θ) = sigmoid(−θ)


def code_map_loss(h: torch.Tensor, code_map: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """``Σ (h Mᵀ − bits · (2L − 1))²``: codes agree with their class's code ``M_c`` (``(C, bits)``,
    ±1) and disagree with the others'; ``onehot`` is ``(b, C)`` (AGAH ``loss_code_map``)."""
    bits = h.shape[1]
    return (h @ code_map.T - bits * (2.0 * onehot - 1.0)).pow(2).sum()


def cosine_triplet_all_loss(anchor: torch.Tensor, target: torch.Tensor, labels: torch.Tensor,
                            margin: float = 0.3) -> torch.Tensor:
    """Sum over every triplet (anchor ``i``, same-label target ``p``, other-label target ``n``) of
    ``max(0, margin + d(i, p) − d(i, n))`` with the cosine distance ``d = 1 − cos``
    (AGAH ``TripletAllLoss(dis_metric='cos', reduction='sum')``; ``anchor[i]`` and
    ``target[i]`` share ``labels[i]``)."""
    dist = 1.0 - F.normalize(anchor, dim=1) @ F.normalize(target, dim=1).T  # (b, b)
    same = labels.unsqueeze(1) == labels.unsqueeze(0)
    # (i, p, n): margin + d[i, p] - d[i, n], kept where p is a positive and n a negative of i
    cube = margin + dist.unsqueeze(2) - dist.unsqueeze(1)
    valid = same.unsqueeze(2) & ~same.unsqueeze(1)
    return (F.relu(cube) * valid).sum()


def ugach_hinge(d_pos: torch.Tensor, d_neg: torch.Tensor, beta: float) -> torch.Tensor:
    """UGACH discriminator loss ``mean max(0, β + d_pos − d_neg)`` (squared Euclidean distances
    between relaxed codes of a query and its graph positive / G's sampled negative)."""
    return F.relu(beta + d_pos - d_neg).mean()


def ugach_reward(d_pos: torch.Tensor, d_neg: torch.Tensor, beta: float) -> torch.Tensor:
    """UGACH's reward of a sampled pair, ``sigmoid(max(0, β + d_pos − d_neg))`` (no gradient)."""
    return torch.sigmoid(F.relu(beta + d_pos - d_neg)).detach()


def wgan_gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, weight: float = 10.0,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP penalty ``weight · mean (‖∇ critic(x̂)‖ − 1)²`` on random interpolates
    ``x̂ = a real + (1 − a) fake`` with ``a ~ U(0, 1)`` per entry, as AGAH draws it."""
    a = torch.rand(real.shape, generator=generator, dtype=real.dtype).to(real.device)
    x = (a * real.detach() + (1 - a) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return weight * (grad.norm(2, dim=1) - 1).pow(2).mean()
