"""Sequence towers: per-modality networks over ``(batch, T, d)`` segment sequences.

Every tower takes ``x`` ``(batch, T, d)`` float32 and a padding mask ``mask`` ``(batch, T)``
bool (``True`` = a real segment, ``False`` = padding) and returns ``(batch, out_features)``.
Padded segments never reach the output: the recurrent towers carry their state over a padded
step unchanged and emit zeros there; the attention towers give padded steps (and chunks made
only of padding) zero weight; the transformer passes the mask as ``src_key_padding_mask`` and
pools over real segments only. So changing the values of padded segments cannot change the
output (``tests/models/deep/test_sequence_models.py`` checks it for each tower).

- :class:`LSTMTower` -- the LSTM-C-CCA branch of the reference code (two stacked LSTMs,
  dropout, a time-distributed softmax dense layer, flatten, a sigmoid dense output).
- :class:`ChunkAttentionTower` -- chunks of ``chunk_size`` segments, a GRU inside each chunk,
  additive attention over the chunk summaries.
- :class:`TransformerTower` -- a transformer encoder over the segments (learned positions),
  masked mean pooling.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["LSTMTower", "ChunkAttentionTower", "TransformerTower", "masked_recurrence", "check_mask"]


def check_mask(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``mask`` as a ``(batch, T)`` bool tensor (all real when ``None``), shapes checked."""
    if x.dim() != 3:
        raise ValueError(f"sequence towers take (batch, T, d) input, got shape {tuple(x.shape)}")
    if mask is None:
        return torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    if tuple(mask.shape) != tuple(x.shape[:2]):
        raise ValueError(f"mask has shape {tuple(mask.shape)}, expected {tuple(x.shape[:2])}")
    return mask.to(torch.bool)


def masked_recurrence(cell: nn.Module, x: torch.Tensor, mask: torch.Tensor, lstm: bool) -> torch.Tensor:
    """Run ``cell`` (``nn.LSTMCell`` / ``nn.GRUCell``) over ``x`` ``(b, T, d)``; at a padded step
    the state is carried over unchanged and the output is zero. Returns ``(b, T, hidden)``."""
    b, t, _ = x.shape
    h = x.new_zeros(b, cell.hidden_size)
    c = x.new_zeros(b, cell.hidden_size) if lstm else None
    outs = []
    for s in range(t):
        keep = mask[:, s].unsqueeze(1)
        # padded inputs are zeroed first: a NaN there must not leak through 0 * NaN
        xs = torch.where(keep, x[:, s], torch.zeros_like(x[:, s]))
        if lstm:
            h_new, c_new = cell(xs, (h, c))
            c = torch.where(keep, c_new, c)
        else:
            h_new = cell(xs, h)
        h = torch.where(keep, h_new, h)
        outs.append(torch.where(keep, h_new, torch.zeros_like(h_new)))
    return torch.stack(outs, dim=1)


class LSTMTower(nn.Module):
    """LSTM-C-CCA branch (``ZenzenDatabase/CMR: MultiCCA.py``, ``created_model``).

    ``x (b, T, d) -> LSTM(units) -> Dropout -> LSTM(units) -> Dropout -> TimeDistributed(Dense(time_units,
    softmax)) -> flatten (T * time_units) -> Dense(out_features, sigmoid)``. Audio in the
    reference: units 512, time_units 128, out 64; visual: 784, 256, 64. The reference's input
    batch normalisation is replaced by the estimator's per-feature standardisation over real
    segments (batch statistics would include padding).
    """

    def __init__(self, in_features: int, n_segments: int, units: int = 512, time_units: int = 128,
                 out_features: int = 64, dropout: float = 0.1):
        super().__init__()
        for name, v in (("in_features", in_features), ("n_segments", n_segments), ("units", units),
                        ("time_units", time_units), ("out_features", out_features)):
            if int(v) != v or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.n_segments = int(n_segments)
        self.lstm1 = nn.LSTMCell(int(in_features), int(units))
        self.lstm2 = nn.LSTMCell(int(units), int(units))
        self.dropout = nn.Dropout(dropout)
        self.time_dense = nn.Linear(int(units), int(time_units))
        self.out = nn.Linear(self.n_segments * int(time_units), int(out_features))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = check_mask(x, mask)
        if x.shape[1] != self.n_segments:
            raise ValueError(f"LSTMTower flattens {self.n_segments} segments, got {x.shape[1]}")
        h = masked_recurrence(self.lstm1, x, mask, lstm=True)
        h = self.dropout(masked_recurrence(self.lstm2, self.dropout(h), mask, lstm=True))
        p = torch.softmax(self.time_dense(h), dim=-1) * mask.unsqueeze(-1)
        return torch.sigmoid(self.out(p.flatten(1)))


class ChunkAttentionTower(nn.Module):
    """Attention over chunks of the sequence with a temporal model inside each chunk.

    The ``T`` segments are cut into ``ceil(T / chunk_size)`` consecutive chunks (the last one
    padded). ``x -> Linear(d, hidden) -> tanh`` per segment, a GRU runs inside each chunk (its
    final state is the chunk summary ``e_c``), additive attention ``α = softmax_c(vᵀ tanh(W e_c))``
    over chunks holding at least one real segment, ``Σ α_c e_c -> Linear(out_features)``.
    """

    def __init__(self, in_features: int, hidden: int = 128, out_features: int = 64, chunk_size: int = 2,
                 attention_dim: int = 64, dropout: float = 0.1):
        super().__init__()
        for name, v in (("in_features", in_features), ("hidden", hidden), ("out_features", out_features),
                        ("chunk_size", chunk_size), ("attention_dim", attention_dim)):
            if int(v) != v or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.chunk_size = int(chunk_size)
        self.embed = nn.Sequential(nn.Linear(int(in_features), int(hidden)), nn.Tanh(), nn.Dropout(dropout))
        self.gru = nn.GRUCell(int(hidden), int(hidden))
        self.score = nn.Sequential(nn.Linear(int(hidden), int(attention_dim)), nn.Tanh(),
                                   nn.Linear(int(attention_dim), 1, bias=False))
        self.out = nn.Linear(int(hidden), int(out_features))

    def chunk_weights(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(summaries (b, C, hidden), attention weights (b, C))`` of each chunk."""
        mask = check_mask(x, mask)
        b, t, _ = x.shape
        k = self.chunk_size
        n_chunks = math.ceil(t / k)
        pad = n_chunks * k - t
        x = torch.where(mask.unsqueeze(-1), x, torch.zeros_like(x))
        if pad:
            x = torch.cat([x, x.new_zeros(b, pad, x.shape[2])], dim=1)
            mask = torch.cat([mask, mask.new_zeros(b, pad)], dim=1)
        e = self.embed(x).reshape(b * n_chunks, k, -1)
        cm = mask.reshape(b * n_chunks, k)
        h = masked_recurrence(self.gru, e, cm, lstm=False)
        # the final state of a chunk = the state after its last real segment
        last = (cm.long() * torch.arange(1, k + 1, device=x.device)).argmax(dim=1)
        summary = h[torch.arange(b * n_chunks, device=x.device), last].reshape(b, n_chunks, -1)
        real = cm.any(dim=1).reshape(b, n_chunks)
        logits = self.score(summary).squeeze(-1).masked_fill(~real, float("-inf"))
        return summary, torch.softmax(logits, dim=1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        summary, alpha = self.chunk_weights(x, mask)
        return self.out((alpha.unsqueeze(-1) * summary).sum(dim=1))


class TransformerTower(nn.Module):
    """Transformer encoder over the segments.

    ``x -> Linear(d, d_model)`` + learned position embedding (``max_segments`` positions) ->
    ``n_layers`` pre-norm encoder layers (``n_heads`` heads, feed-forward ``4·d_model``, GELU)
    with the padding mask as ``src_key_padding_mask`` -> mean over real segments ->
    ``LayerNorm -> Linear(out_features)``.
    """

    def __init__(self, in_features: int, max_segments: int, d_model: int = 128, n_heads: int = 4,
                 n_layers: int = 2, out_features: int = 64, dropout: float = 0.1):
        super().__init__()
        for name, v in (("in_features", in_features), ("max_segments", max_segments), ("d_model", d_model),
                        ("n_heads", n_heads), ("n_layers", n_layers), ("out_features", out_features)):
            if int(v) != v or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be a multiple of n_heads ({n_heads})")
        self.max_segments = int(max_segments)
        self.inp = nn.Linear(int(in_features), int(d_model))
        self.pos = nn.Parameter(torch.zeros(1, self.max_segments, int(d_model)))
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(int(d_model), int(n_heads), 4 * int(d_model), dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        # enable_nested_tensor=False: the padded-query rows stay in the output (and are pooled out)
        self.encoder = nn.TransformerEncoder(layer, int(n_layers), enable_nested_tensor=False)
        self.norm = nn.LayerNorm(int(d_model))
        self.out = nn.Linear(int(d_model), int(out_features))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = check_mask(x, mask)
        if x.shape[1] > self.max_segments:
            raise ValueError(f"TransformerTower has {self.max_segments} positions, got {x.shape[1]} segments")
        x = torch.where(mask.unsqueeze(-1), x, torch.zeros_like(x))
        h = self.inp(x) + self.pos[:, : x.shape[1]]
        h = self.encoder(h, src_key_padding_mask=~mask)
        w = mask.unsqueeze(-1).to(h.dtype)
        pooled = (torch.where(mask.unsqueeze(-1), h, torch.zeros_like(h))).sum(1) / w.sum(1).clamp_min(1.0)
        return self.out(self.norm(pooled))
