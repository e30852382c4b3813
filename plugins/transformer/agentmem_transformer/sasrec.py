"""SASRec: self-attentive sequential recommendation (causal Transformer over item ids)."""

from __future__ import annotations

import torch
from torch import nn


class SASRec(nn.Module):
    """``forward(seq)`` -> hidden (B, L, d) for item-id sequences (0 = padding, left-padded);
    the score of item i after position t is ``hidden[:, t] @ item_emb.weight[i]``."""

    def __init__(self, items: int, *, max_len: int = 50, quick: bool = False, d: int | None = None,
                 layers: int | None = None, heads: int = 1, dropout: float = 0.5) -> None:
        super().__init__()
        d = d or (32 if quick else 64)
        layers = layers or (1 if quick else 2)
        self.feature_dim, self.max_len = d, max_len
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
        pos = torch.arange(t, device=seq.device)
        x = self.drop(self.item_emb(seq) * self.feature_dim ** 0.5 + self.pos(pos))  # (B, L, d)
        x = x * (seq != 0).unsqueeze(-1)
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool, device=seq.device), diagonal=1)
        h = self.encoder(x, mask=causal)
        return self.norm(h) * (seq != 0).unsqueeze(-1)  # (B, L, d)
