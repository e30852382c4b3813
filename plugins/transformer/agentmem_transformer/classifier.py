"""A small vision Transformer: the image is cut into patches, each a token; a [CLS] token is read out."""

from __future__ import annotations

import torch
from torch import nn


class PatchClassifier(nn.Module):
    """``features(x)`` (B, d) from images x (B, C, H, W); ``head`` maps features to class logits."""

    def __init__(self, shape: tuple[int, int, int], classes: int, *, quick: bool = False, d: int | None = None,
                 layers: int | None = None, heads: int = 4, dropout: float = 0.1, patch: int | None = None) -> None:
        super().__init__()
        c, h, w = shape
        self.patch = patch or (4 if min(h, w) >= 16 else 2)
        assert h % self.patch == 0 and w % self.patch == 0, f"image {h}x{w} not divisible by patch {self.patch}"
        d = d or (32 if quick else 96)
        layers = layers or (1 if quick else 3)
        n = (h // self.patch) * (w // self.patch)
        self.embed = nn.Linear(c * self.patch * self.patch, d)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.randn(1, n + 1, d) * 0.02)
        block = nn.TransformerEncoderLayer(d, heads, 2 * d, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, classes)
        self.feature_dim = d

    def features(self, x: torch.Tensor) -> torch.Tensor:
        b, c, _, _ = x.shape
        p = self.patch
        tokens = x.unfold(2, p, p).unfold(3, p, p)  # (B, C, H/p, W/p, p, p)
        tokens = tokens.permute(0, 2, 3, 1, 4, 5).reshape(b, -1, c * p * p)  # (B, N, C*p*p)
        z = torch.cat([self.cls.expand(b, -1, -1), self.embed(tokens)], dim=1) + self.pos  # (B, N+1, d)
        return self.norm(self.encoder(z)[:, 0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
