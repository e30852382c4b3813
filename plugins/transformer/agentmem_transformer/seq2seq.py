"""An encoder-decoder Transformer (pre-norm) for translation, with a tied target embedding."""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn


class Seq2SeqTransformer(nn.Module):
    """``encode(src)`` -> (memory (B, S, d), src_pad (B, S)); ``decode(tgt_in, enc)`` -> hidden (B, T, d);
    ``generator`` maps hidden states to target-vocabulary logits; ``pool(enc)`` -> (B, d)."""

    def __init__(self, src_vocab: int, tgt_vocab: int, *, pad: int = 0, max_len: int = 128, quick: bool = False,
                 d: int | None = None, layers: int | None = None, heads: int = 4, ff: int | None = None,
                 dropout: float = 0.1) -> None:
        super().__init__()
        d = d or (64 if quick else 256)
        layers = layers or (1 if quick else 3)
        self.pad, self.d, self.feature_dim = pad, d, d
        self.src_emb = nn.Embedding(src_vocab, d, padding_idx=pad)
        self.tgt_emb = nn.Embedding(tgt_vocab, d, padding_idx=pad)
        self.pos = nn.Embedding(max_len, d)
        self.drop = nn.Dropout(dropout)
        with warnings.catch_warnings():  # nested tensors do not apply to pre-norm layers; nothing to warn about
            warnings.simplefilter("ignore", UserWarning)
            self.transformer = nn.Transformer(d, heads, layers, layers, ff or 4 * d, dropout, batch_first=True,
                                              norm_first=True)
        self.generator = nn.Linear(d, tgt_vocab, bias=False)
        self.generator.weight = self.tgt_emb.weight
        # embeddings of norm ~1: scaled by sqrt(d) on input they match the positions, and as the
        # (tied) output layer they give logits of unit scale
        for emb in (self.src_emb, self.tgt_emb):
            nn.init.normal_(emb.weight, std=d ** -0.5)
            with torch.no_grad():
                emb.weight[pad].zero_()

    def _embed(self, emb: nn.Embedding, ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)
        return self.drop(emb(ids) * math.sqrt(self.d) + self.pos(pos))

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pad = src == self.pad  # (B, S)
        memory = self.transformer.encoder(self._embed(self.src_emb, src), src_key_padding_mask=pad)
        return memory, pad

    def decode(self, tgt_in: torch.Tensor, enc: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        memory, src_pad = enc
        t = tgt_in.shape[1]
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool, device=tgt_in.device), diagonal=1)
        return self.transformer.decoder(self._embed(self.tgt_emb, tgt_in), memory, tgt_mask=causal,
                                        tgt_key_padding_mask=tgt_in == self.pad,
                                        memory_key_padding_mask=src_pad)  # (B, T, d)

    def pool(self, enc: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        memory, pad = enc
        keep = (~pad).unsqueeze(-1).float()
        return (memory * keep).sum(1) / keep.sum(1).clamp(min=1.0)  # (B, d)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        return self.generator(self.decode(tgt_in, self.encode(src)))
