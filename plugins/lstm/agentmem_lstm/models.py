"""The recurrent models. Shapes: B batch, T/S sequence lengths, d hidden size."""

from __future__ import annotations

import torch
from torch import nn


def _rnn(cell: str, *args: object, **kwargs: object) -> nn.Module:
    if cell not in ("lstm", "gru"):
        raise ValueError(f"cell must be 'lstm' or 'gru', got {cell!r}")
    return (nn.LSTM if cell == "lstm" else nn.GRU)(*args, **kwargs)


class RowClassifier(nn.Module):
    """Reads an image (B, C, H, W) as H steps of C*W pixels with a bidirectional RNN; the features are the
    mean of its outputs over rows."""

    def __init__(self, shape: tuple[int, int, int], classes: int, *, quick: bool = False, d: int | None = None,
                 layers: int | None = None, cell: str = "lstm", dropout: float = 0.1) -> None:
        super().__init__()
        c, _, w = shape
        d = d or (32 if quick else 128)
        layers = layers or (1 if quick else 2)
        self.rnn = _rnn(cell, c * w, d, layers, batch_first=True, bidirectional=True,
                        dropout=dropout if layers > 1 else 0.0)
        self.norm = nn.LayerNorm(2 * d)
        self.head = nn.Linear(2 * d, classes)
        self.feature_dim = 2 * d

    def features(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        rows = x.permute(0, 2, 1, 3).reshape(b, h, c * w)  # (B, H, C*W)
        out, _ = self.rnn(rows)  # (B, H, 2d)
        return self.norm(out.mean(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class AttentionSeq2Seq(nn.Module):
    """Bidirectional RNN encoder; RNN decoder with multiplicative (Luong) attention over the encoder
    states at every target position, computed in parallel under teacher forcing.

    ``encode(src)`` -> (states (B, S, d), src_pad (B, S), init (B, d)); ``decode(tgt_in, enc)`` ->
    hidden (B, T, d); ``generator`` maps hidden states to logits; ``pool(enc)`` -> (B, d).
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, *, pad: int = 0, quick: bool = False,
                 d: int | None = None, layers: int | None = None, cell: str = "lstm", dropout: float = 0.2) -> None:
        super().__init__()
        d = d or (64 if quick else 256)
        layers = layers or (1 if quick else 2)
        self.pad, self.feature_dim, self.cell, self.layers = pad, d, cell, layers
        self.src_emb = nn.Embedding(src_vocab, d, padding_idx=pad)
        self.tgt_emb = nn.Embedding(tgt_vocab, d, padding_idx=pad)
        self.encoder = _rnn(cell, d, d // 2, layers, batch_first=True, bidirectional=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.decoder = _rnn(cell, d, d, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.bridge = nn.Linear(d, d)
        self.attn = nn.Linear(d, d, bias=False)
        self.combine = nn.Linear(2 * d, d)
        self.drop = nn.Dropout(dropout)
        self.generator = nn.Linear(d, tgt_vocab, bias=False)
        self.generator.weight = self.tgt_emb.weight
        for emb in (self.src_emb, self.tgt_emb):  # unit-norm rows keep the tied output logits small
            nn.init.normal_(emb.weight, std=d ** -0.5)
            with torch.no_grad():
                emb.weight[pad].zero_()

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pad = src == self.pad
        states, _ = self.encoder(self.drop(self.src_emb(src)))  # (B, S, d)
        states = states * (~pad).unsqueeze(-1)
        init = torch.tanh(self.bridge(self.pool((states, pad, states[:, 0]))))  # (B, d)
        return states, pad, init

    def decode(self, tgt_in: torch.Tensor, enc: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        states, pad, init = enc
        h0 = init.unsqueeze(0).repeat(self.layers, 1, 1).contiguous()  # (layers, B, d)
        hidden0 = (h0, torch.zeros_like(h0)) if self.cell == "lstm" else h0
        out, _ = self.decoder(self.drop(self.tgt_emb(tgt_in)), hidden0)  # (B, T, d)
        scores = self.attn(out) @ states.transpose(1, 2)  # (B, T, S)
        scores = scores.masked_fill(pad.unsqueeze(1), float("-inf"))
        context = torch.softmax(scores, dim=-1) @ states  # (B, T, d)
        return torch.tanh(self.combine(self.drop(torch.cat([out, context], dim=-1))))  # (B, T, d)

    def pool(self, enc: tuple[torch.Tensor, ...]) -> torch.Tensor:
        states, pad = enc[0], enc[1]
        keep = (~pad).unsqueeze(-1).float()
        return (states * keep).sum(1) / keep.sum(1).clamp(min=1.0)  # (B, d)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        return self.generator(self.decode(tgt_in, self.encode(src)))


class SessionRecommender(nn.Module):
    """GRU4Rec-style: an RNN over the item sequence; ``forward(seq)`` -> hidden (B, L, d) and the score
    of item i after position t is ``hidden[:, t] @ item_emb.weight[i]`` (0 = padding)."""

    def __init__(self, items: int, *, quick: bool = False, d: int | None = None, layers: int = 1,
                 cell: str = "gru", dropout: float = 0.3) -> None:
        super().__init__()
        d = d or (32 if quick else 64)
        self.feature_dim = d
        self.item_emb = nn.Embedding(items + 1, d, padding_idx=0)
        nn.init.normal_(self.item_emb.weight, std=d ** -0.5)  # scores are raw dot products: keep them small
        with torch.no_grad():
            self.item_emb.weight[0].zero_()
        self.rnn = _rnn(cell, d, d, layers, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(d, d)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(self.drop(self.item_emb(seq)))  # (B, L, d)
        return self.out(self.drop(h)) * (seq != 0).unsqueeze(-1)
