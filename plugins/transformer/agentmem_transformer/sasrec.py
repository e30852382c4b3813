"""SASRec: self-attentive sequential recommendation (causal Transformer over item ids)."""

from __future__ import annotations

import torch
from torch import nn


class SASRec(nn.Module):
    """``forward(seq)`` -> hidden (B, L, d) for item-id sequences (0 = padding, left-padded);
    the score of item i after position t is ``hidden[:, t] @ item_emb.weight[i]``.

    Padding is invisible: no item attends to a padding position and positions count back from the
    last column, so the states of real items do not depend on how much padding precedes them
    (``pad_invariant``: a batch may be trimmed to its longest sequence)."""

    pad_invariant = True

    def __init__(self, items: int, *, max_len: int = 50, quick: bool = False, d: int | None = None,
                 layers: int | None = None, heads: int = 1, dropout: float = 0.5, sink: bool = True) -> None:
        super().__init__()
        d = d or (32 if quick else 64)
        layers = layers or (1 if quick else 2)
        self.feature_dim, self.max_len, self.sink = d, max_len, sink
        self.item_emb = nn.Embedding(items + 1, d, padding_idx=0)
        # small item vectors: inputs are scaled by sqrt(d), and scores are raw dot products
        nn.init.normal_(self.item_emb.weight, std=d ** -0.5)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()
        self.pos = nn.Embedding(max_len, d)
        self.drop = nn.Dropout(dropout)
        block = nn.TransformerEncoderLayer(d, heads, d, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        t = seq.shape[1]
        if t > self.max_len:
            raise ValueError(f"sequences of {t} items exceed max_len {self.max_len}")
        real = seq != 0  # (B, L)
        pos = torch.arange(self.max_len - t, self.max_len, device=seq.device)
        x = self.drop(self.item_emb(seq) * self.feature_dim ** 0.5 + self.pos(pos))  # (B, L, d)
        x = x * real.unsqueeze(-1)
        if self.sink:  # one empty column in front that every position may attend to ("nothing")
            x = torch.cat([x.new_zeros(x.shape[0], 1, x.shape[2]), x], dim=1)
            real = torch.cat([real.new_ones(real.shape[0], 1), real], dim=1)
        n = x.shape[1]
        eye = torch.eye(n, dtype=torch.bool, device=seq.device)
        # blocked[b, i, j]: query i may not read key j (a later position, or padding other than itself)
        blocked = torch.triu(~eye, diagonal=1) | (~real[:, None, :] & ~eye)  # (B, n, n)
        heads = self.encoder.layers[0].self_attn.num_heads
        h = self.encoder(x, mask=blocked.repeat_interleave(heads, dim=0))[:, n - t:]
        return self.norm(h) * (seq != 0).unsqueeze(-1)  # (B, L, d)
