"""Cross-modal triplet miners.

Anchors are the rows of a distance matrix ``dist (n_a, n_v)`` (audio items), candidates its
columns (visual items): a **positive** of anchor ``i`` is a visual item of the same class
(its own paired item included), a **negative** one of another class. A miner returns three
``(t,)`` int64 tensors ``(anchors, positives, negatives)`` indexing ``dist``'s rows and columns;
feed them to :func:`~crossmodal_core.models.deep.losses.triplet_loss_from_distances`.
Miners never back-propagate (they read ``dist`` detached).

- ``"batch-all"``: every valid triplet.
- ``"batch-hard"`` (Hermans et al. 2017): per anchor, its farthest positive and nearest
  negative (anchors lacking either are skipped).
- ``"semi-hard"`` (Schroff et al. 2015): every triplet with ``d(a,p) < d(a,n) < d(a,p) + margin``.

:func:`derangement` draws the mismatched pairs of a batch (item ``i`` paired with another
item's partner) that UGAAR's matching-aware discriminator sees as fakes.
"""

from __future__ import annotations

import torch

__all__ = ["MINERS", "batch_all_triplets", "batch_hard_triplets", "semi_hard_triplets", "mine_triplets",
           "derangement"]

MINERS = ("batch-all", "batch-hard", "semi-hard")


def _masks(dist: torch.Tensor, labels_a: torch.Tensor, labels_v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if dist.ndim != 2 or dist.shape != (labels_a.shape[0], labels_v.shape[0]):
        raise ValueError(f"dist must be (n_anchors, n_items) = ({labels_a.shape[0]}, {labels_v.shape[0]}), "
                         f"got {tuple(dist.shape)}")
    same = labels_a.unsqueeze(1) == labels_v.unsqueeze(0)
    return same, ~same


def batch_all_triplets(dist: torch.Tensor, labels_a: torch.Tensor, labels_v: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every ``(i, j, k)`` with ``labels_v[j] == labels_a[i] != labels_v[k]``."""
    pos, neg = _masks(dist, labels_a, labels_v)
    valid = pos.unsqueeze(2) & neg.unsqueeze(1)  # (n_a, n_v, n_v)
    a, p, n = torch.nonzero(valid, as_tuple=True)
    return a, p, n


def batch_hard_triplets(dist: torch.Tensor, labels_a: torch.Tensor, labels_v: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per anchor, the hardest positive (max distance) and the hardest negative (min distance)."""
    pos, neg = _masks(dist, labels_a, labels_v)
    d = dist.detach()
    inf = torch.tensor(float("inf"), dtype=d.dtype, device=d.device)
    hardest_pos = torch.where(pos, d, -inf).argmax(1)
    hardest_neg = torch.where(neg, d, inf).argmin(1)
    ok = pos.any(1) & neg.any(1)
    anchors = torch.nonzero(ok, as_tuple=True)[0]
    return anchors, hardest_pos[anchors], hardest_neg[anchors]


def semi_hard_triplets(dist: torch.Tensor, labels_a: torch.Tensor, labels_v: torch.Tensor, margin: float
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every valid triplet whose negative is farther than the positive but inside the margin."""
    pos, neg = _masks(dist, labels_a, labels_v)
    d = dist.detach()
    dap = d.unsqueeze(2)  # (n_a, n_v, 1): d(a, p)
    dan = d.unsqueeze(1)  # (n_a, 1, n_v): d(a, n)
    valid = pos.unsqueeze(2) & neg.unsqueeze(1) & (dan > dap) & (dan < dap + margin)
    a, p, n = torch.nonzero(valid, as_tuple=True)
    return a, p, n


def mine_triplets(strategy: str, dist: torch.Tensor, labels_a: torch.Tensor, labels_v: torch.Tensor,
                  margin: float = 0.3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Dispatch on ``strategy`` (one of :data:`MINERS`)."""
    if strategy == "batch-all":
        return batch_all_triplets(dist, labels_a, labels_v)
    if strategy == "batch-hard":
        return batch_hard_triplets(dist, labels_a, labels_v)
    if strategy == "semi-hard":
        return semi_hard_triplets(dist, labels_a, labels_v, margin)
    raise ValueError(f"mining must be one of {MINERS}, got {strategy!r}")


def derangement(n: int, generator: torch.Generator) -> torch.Tensor:
    """A random permutation of ``0..n-1`` with no fixed point (``n >= 2``): a cyclic shift of
    a random order, so item ``i`` is always paired with another item.

    Returns
    -------
    (n,) int64 tensor ``p`` with ``p[i] != i``
    """
    if n < 2:
        raise ValueError("a derangement needs at least 2 items")
    order = torch.randperm(n, generator=generator)
    shift = int(torch.randint(1, n, (1,), generator=generator))
    out = torch.empty(n, dtype=torch.long)
    out[order] = order[(torch.arange(n) + shift) % n]
    return out
