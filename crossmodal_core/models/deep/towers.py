"""Towers: the per-modality networks every deep model is built from.

The input's shape picks the tower (:func:`make_tower`), so no model has code of its own for it:

- ``in_features`` an int ``d`` (a flat view ``(n, d)``): the MLP below;
- ``in_features`` a shape ``(C, H, W)`` (an image or spectrogram view ``(n, C, H, W)``): the
  2-D CNN :class:`ConvTower` (conv-bn-relu blocks with pooling, global average pooling, then the
  same MLP as a head);
- a shape ``(T, d)`` (a sequence view ``(n, T, d)``) is refused: sequences have their own towers
  (:mod:`.sequence_towers`) in the sequence models.

An MLP tower maps ``(batch, in_features)`` to ``(batch, out_features)`` through
``Linear -> [BatchNorm1d] -> activation -> [Dropout]`` blocks, one per hidden width, and a
final ``Linear`` (no activation unless ``output_activation`` is given), e.g. the TNN-C-CCA
branch ``10 -> 100 -> 100 -> 100 -> 10`` with tanh and dropout 0.1 is::

    make_tower(10, hidden=(100, 100, 100), out_features=10, activation="tanh", dropout=0.1)
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence, Union

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "CNN_CHANNELS", "STEM_PIXELS", "stem_stride", "ConvTower", "FeatureSpec", "feature_spec", "make_tower",
           "make_towers", "L2Normalize"]

#: what a tower takes: ``d`` for a flat view, ``(C, H, W)`` for an image / spectrogram view
FeatureSpec = Union[int, tuple[int, int, int]]

#: channels of the CNN tower's conv-bn-relu blocks (each followed by a 2 x 2 max-pool)
CNN_CHANNELS: tuple[int, ...] = (8, 16, 32, 64)
#: columns kept by the final average pooling: 1 is global average pooling; more keep a coarse
#: left-to-right (time) order in the features handed to the head
CNN_POOL_COLUMNS = 1
#: the stem's stride is the smallest power of two that brings H x W down to at most this many
#: pixels (64 x 512 -> stride 4 -> 16 x 128; 64 x 256 -> stride 2 -> 32 x 128): CPU cost per item
#: stays about constant whatever raster size the dataset chose
STEM_PIXELS = 4096


def stem_stride(height: int, width: int, max_pixels: int = STEM_PIXELS) -> int:
    """Smallest power of two ``s`` with ``ceil(H / s) * ceil(W / s) <= max_pixels``."""
    s = 1
    while -(-height // s) * -(-width // s) > max_pixels:
        s *= 2
    return s

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


def feature_spec(shape: Any, what: str = "view") -> FeatureSpec:
    """The tower input of a view from its per-item shape (``array.shape[1:]``, or an int).

    ``d`` or ``(d,)`` -> ``d`` (MLP); ``(C, H, W)`` -> that tuple (CNN); ``(T, d)`` is a
    sequence view and raises ``ValueError`` naming the sequence models; anything else too.
    """
    if isinstance(shape, (int,)) or (hasattr(shape, "__index__") and not isinstance(shape, bool)):
        dims: tuple[int, ...] = (int(shape),)
    else:
        try:
            dims = tuple(int(s) for s in shape)
        except TypeError:
            raise ValueError(f"{what}: a tower input must be a width d or a shape (C, H, W), got {shape!r}") from None
    if any(d < 1 for d in dims):
        raise ValueError(f"{what}: every dimension of a tower input must be >= 1, got {dims}")
    if len(dims) == 1:
        return dims[0]
    if len(dims) == 3:
        return (dims[0], dims[1], dims[2])
    if len(dims) == 2:
        raise ValueError(f"{what} is a sequence view (n, T, d) with (T, d) = {dims}; the flat and image models "
                         "take (n, d) or (n, C, H, W) views: pass its time average, or use a sequence model "
                         "(lstm-ccca, sdcca, attention, seq-transformer)")
    raise ValueError(f"{what} has rank {len(dims) + 1} (item shape {dims}); a deep model takes (n, d) flat "
                     "views or (n, C, H, W) image / spectrogram views")


class ConvTower(nn.Module):
    """A small 2-D CNN tower for ``(batch, C, H, W)`` images or spectrograms.

    Layers: an input ``BatchNorm2d(C, affine=False)``, then per entry of ``channels`` a block
    ``Conv2d -> BatchNorm2d -> ReLU -> MaxPool2d 2x2`` (pooling stops halving a side once it is
    1), then average pooling to ``(batch, channels[-1] * pool_columns)`` (``pool_columns`` 1:
    global average pooling) and the MLP ``head``
    (:func:`make_tower`). The convs are 3 x 3 (padding 1) except the first, the stem, whose
    stride is ``stride`` (default :func:`stem_stride` of the input size) and whose kernel is
    ``stride + 1`` when ``stride > 1`` (odd, larger than the stride, so no pixel column is
    skipped: a one-pixel stem or bar line always reaches the features).

    Input scaling: the input batch norm standardises each channel with **one** mean and one
    standard deviation over all its pixels (batch statistics while training, running ones at
    inference), a global scale: per-pixel standardisation would divide blank margins (a
    constant 0 column of a score image) by a near-zero deviation and blow up any ink there.
    Inputs of any numeric dtype (uint8 rasters, float16 log-mels) are cast to float32 here, so
    callers can keep a whole training set in its compact dtype. The running statistics are
    buffers, so they travel in the ``state_dict`` (checkpoints with ``weights_only=True``).

    Cost (measured, one thread, a batch of 128, forward + backward + Adam, CPU seconds per
    step): ``1 x 64 x 512`` with channels 16/32/64/64 and a stride-2 stem 1.40, 8/16/32/64
    stride 2 0.66, 8/16/32/64 stride 4 (the default for that size) 0.22; ``1 x 64 x 256``
    stride 2 (its default) 0.23, stride 4 0.12.
    """

    def __init__(self, in_shape: Sequence[int], head: nn.Module, channels: Sequence[int] = CNN_CHANNELS,
                 stride: int | None = None, pool_columns: int = 1):
        super().__init__()
        spec = feature_spec(tuple(in_shape), "ConvTower input")
        if not isinstance(spec, tuple):
            raise ValueError(f"ConvTower takes a (C, H, W) input shape, got {tuple(in_shape)}")
        channels = [int(c) for c in channels]
        if not channels or any(c < 1 for c in channels):
            raise ValueError(f"channels must be a non-empty sequence of positive integers, got {channels}")
        self.in_shape = spec
        self.input_norm = nn.BatchNorm2d(spec[0], affine=False)
        layers: list[nn.Module] = []
        width, h, w = spec
        first = stem_stride(h, w) if stride is None else int(stride)
        if first < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        self.stride = first
        for i, c in enumerate(channels):
            s = first if i == 0 else 1
            kernel = 3 if s == 1 else s + 1 if s % 2 == 0 else s + 2
            pad = kernel // 2
            layers += [nn.Conv2d(width, c, kernel_size=kernel, stride=s, padding=pad, bias=False),
                       nn.BatchNorm2d(c), nn.ReLU()]
            h, w = (h + 2 * pad - kernel) // s + 1, (w + 2 * pad - kernel) // s + 1
            kernel = (2 if h >= 2 else 1, 2 if w >= 2 else 1)
            if kernel != (1, 1):
                layers.append(nn.MaxPool2d(kernel))
                h, w = h // kernel[0], w // kernel[1]
            width = c
        self.features = nn.Sequential(*layers)
        if int(pool_columns) < 1:
            raise ValueError(f"pool_columns must be >= 1, got {pool_columns}")
        self.pool = nn.AdaptiveAvgPool2d((1, int(pool_columns)))
        self.out_features = width * int(pool_columns)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"ConvTower built for (batch, {', '.join(map(str, self.in_shape))}) inputs, "
                             f"got {tuple(x.shape)}")
        x = self.input_norm(x.to(torch.float32))
        return self.head(torch.flatten(self.pool(self.features(x)), 1))


def make_tower(
    in_features: FeatureSpec,
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
    in_features : int > 0 or (C, H, W)
        Input width of a flat view, or the item shape of an image / spectrogram view (then
        the tower is a :class:`ConvTower` whose head is the MLP described here, fed with the
        CNN's pooled ``CNN_CHANNELS[-1]`` features); see :func:`feature_spec`.
    out_features : int > 0
        Output width.
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
    torch.nn.Sequential (flat input) or ConvTower (image input)
    """
    spec = feature_spec(in_features, "in_features")
    if isinstance(spec, tuple):
        head = make_tower(CNN_CHANNELS[-1] * CNN_POOL_COLUMNS, hidden, out_features, activation, dropout,
                          batch_norm, output_activation, normalize)
        return ConvTower(spec, head, CNN_CHANNELS, pool_columns=CNN_POOL_COLUMNS)
    in_features = spec
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


def make_towers(in_features: Mapping[str, FeatureSpec], **tower_options: Any) -> nn.ModuleDict:
    """One :func:`make_tower` per named input (width or ``(C, H, W)`` shape), all with the same
    ``tower_options``.

    ``make_towers({"view0": 128, "view1": (1, 64, 512)}, hidden=(256,), out_features=10)`` gives
    a ``ModuleDict`` with an MLP and a CNN tower, built (and so initialised) in the order of
    ``in_features``.
    """
    return nn.ModuleDict({name: make_tower(d, **tower_options) for name, d in in_features.items()})
