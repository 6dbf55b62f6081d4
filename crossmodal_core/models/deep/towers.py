"""MLP towers: the per-modality networks every deep model is built from.

A tower maps ``(batch, in_features)`` to ``(batch, out_features)`` through
``Linear -> [BatchNorm1d] -> activation -> [Dropout]`` blocks, one per hidden width, and a
final ``Linear`` (no activation unless ``output_activation`` is given), e.g. the TNN-C-CCA
branch ``10 -> 100 -> 100 -> 100 -> 10`` with tanh and dropout 0.1 is::

    make_tower(10, hidden=(100, 100, 100), out_features=10, activation="tanh", dropout=0.1)
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "make_tower", "make_towers", "L2Normalize"]

#: activation names accepted by :func:`make_tower`
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
}


def _activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None


class L2Normalize(nn.Module):
    """Scale each row to unit euclidean norm (for cosine-similarity objectives)."""

    def __init__(self, eps: float = 1e-12):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(x, dim=-1, eps=self.eps)


def make_tower(
    in_features: int,
    hidden: Sequence[int] = (100, 100, 100),
    out_features: int = 10,
    activation: str = "tanh",
    dropout: float = 0.0,
    batch_norm: bool = False,
    output_activation: str | None = None,
    normalize: bool = False,
) -> nn.Sequential:
    """Build an MLP tower.

    Parameters
    ----------
    in_features, out_features : int > 0
        Input and output widths.
    hidden : sequence of int
        Hidden layer widths (may be empty: then the tower is one linear map).
    activation : str
        One of :data:`ACTIVATIONS`, applied after every hidden layer.
    dropout : float in [0, 1)
        Dropout after every hidden activation (not on the output).
    batch_norm : bool
        Insert ``BatchNorm1d`` between each hidden ``Linear`` and its activation.
    output_activation : str or None
        Activation applied to the output (``None``: linear output).
    normalize : bool
        L2-normalise the output rows.

    Returns
    -------
    torch.nn.Sequential
    """
    for name, value in (("in_features", in_features), ("out_features", out_features)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    hidden = [int(h) for h in hidden]
    if any(h < 1 for h in hidden):
        raise ValueError(f"hidden widths must be positive integers, got {hidden}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    _activation(activation)  # validate the name even when there is no hidden layer
    layers: list[nn.Module] = []
    width = int(in_features)
    for h in hidden:
        layers.append(nn.Linear(width, h))
        if batch_norm:
            layers.append(nn.BatchNorm1d(h))
        layers.append(_activation(activation))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, int(out_features)))
    if output_activation is not None:
        layers.append(_activation(output_activation))
    if normalize:
        layers.append(L2Normalize())
    return nn.Sequential(*layers)


def make_towers(in_features: Mapping[str, int], **tower_options: Any) -> nn.ModuleDict:
    """One :func:`make_tower` per named input width, all with the same ``tower_options``.

    ``make_towers({"view0": 128, "view1": 1024}, hidden=(256,), out_features=10)`` gives a
    ``ModuleDict`` whose towers are built (and so initialised) in the order of ``in_features``.
    """
    return nn.ModuleDict({name: make_tower(int(d), **tower_options) for name, d in in_features.items()})
