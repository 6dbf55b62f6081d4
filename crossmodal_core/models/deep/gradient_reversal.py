"""Gradient reversal (Ganin & Lempitsky, ICML 2015) and its weight schedule.

The layer is the identity in the forward pass and multiplies the gradient by ``-λ`` in the
backward pass, so a modality (domain) classifier placed behind it *minimises* its loss while
everything in front of it (the projectors) *maximises* it, in a single optimiser step. ACMR
(Wang et al. 2017) and our UCAL reconstruction use it; the schedule
``λ(p) = 2 / (1 + exp(-10 p)) - 1`` over training progress ``p ∈ [0, 1]`` is Ganin's, used
as is by the ACMR reference code (``flip_gradient`` with ``l`` recomputed every epoch).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["grad_reverse", "GradientReversal", "grl_lambda"]


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, lam: float) -> torch.Tensor:  # noqa: D401 - autograd hook
        ctx.lam = float(lam)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.lam * grad, None


def grad_reverse(x: torch.Tensor, lam: float = 1.0) -> torch.Tensor:
    """``x`` unchanged forward; gradient ``-lam · g`` backward. ``lam >= 0``."""
    if not lam >= 0:
        raise ValueError(f"the gradient-reversal weight must be >= 0, got {lam}")
    return _GradReverse.apply(x, lam)


class GradientReversal(nn.Module):
    """Module form of :func:`grad_reverse`; set ``lam`` before each step (the schedule)."""

    def __init__(self, lam: float = 1.0):
        super().__init__()
        self.lam = float(lam)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.lam)

    def extra_repr(self) -> str:
        return f"lam={self.lam:g}"


def grl_lambda(progress: float, gamma: float = 10.0) -> float:
    """Ganin's schedule ``2 / (1 + exp(-gamma · p)) - 1``: 0 at ``p = 0``, → 1 as ``p → 1``.

    ``progress`` is clipped to ``[0, 1]``.
    """
    p = min(max(float(progress), 0.0), 1.0)
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0
