"""Pairwise distances between two batches of embeddings (torch, differentiable).

Conventions: larger means farther for every metric.

- ``"squared_euclidean"``: ``||a - b||²`` (the TNN-C-CCA paper's triplet distance);
- ``"euclidean"``: ``||a - b||`` (the gradient at 0 is made finite with a tiny floor);
- ``"cosine"``: ``1 - cos(a, b)`` in ``[0, 2]``.
"""

from __future__ import annotations

import torch

__all__ = ["DISTANCES", "pairwise_distance", "paired_distance"]

DISTANCES = ("squared_euclidean", "euclidean", "cosine")


def _check(metric: str) -> str:
    if metric not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}, got {metric!r}")
    return metric


def pairwise_distance(a: torch.Tensor, b: torch.Tensor, metric: str = "squared_euclidean") -> torch.Tensor:
    """``(n, d)`` and ``(m, d)`` -> ``(n, m)`` distances."""
    _check(metric)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need (n, d) and (m, d) tensors, got {tuple(a.shape)} and {tuple(b.shape)}")
    if metric == "cosine":
        an = torch.nn.functional.normalize(a, dim=1)
        bn = torch.nn.functional.normalize(b, dim=1)
        return 1.0 - an @ bn.T
    # expanded form: one matmul instead of an (n, m, d) difference tensor
    sq = (a * a).sum(1, keepdim=True) - 2.0 * (a @ b.T) + (b * b).sum(1).unsqueeze(0)
    sq = sq.clamp_min(0.0)
    if metric == "squared_euclidean":
        return sq
    return torch.sqrt(sq.clamp_min(1e-12))


def paired_distance(a: torch.Tensor, b: torch.Tensor, metric: str = "squared_euclidean") -> torch.Tensor:
    """Row-wise distance of two ``(n, d)`` tensors -> ``(n,)``."""
    _check(metric)
    if a.shape != b.shape:
        raise ValueError(f"paired tensors must have equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    if metric == "cosine":
        return 1.0 - torch.nn.functional.cosine_similarity(a, b, dim=-1)
    sq = ((a - b) ** 2).sum(-1)
    return sq if metric == "squared_euclidean" else torch.sqrt(sq.clamp_min(1e-12))
