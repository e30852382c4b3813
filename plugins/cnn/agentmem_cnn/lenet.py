"""The LeNet-5 family network."""

from __future__ import annotations

import torch
from torch import nn


class LeNet(nn.Module):
    """conv-bn-relu-pool x 2, then dropout/linear/relu layers; ``features(x)`` (B, hidden[-1])."""

    def __init__(self, shape: tuple[int, int, int], classes: int, *, quick: bool = False,
                 channels: tuple[int, ...] | None = None, hidden: tuple[int, ...] | None = None,
                 dropout: float = 0.3) -> None:
        super().__init__()
        c, h, w = shape
        channels = tuple(channels or ((8, 16) if quick else (32, 64)))
        hidden = tuple(hidden or ((64,) if quick else (256, 128)))
        k = 5 if min(h, w) >= 16 else 3
        blocks: list[nn.Module] = []
        for out in channels:
            blocks += [nn.Conv2d(c, out, k, padding=k // 2), nn.BatchNorm2d(out), nn.ReLU()]
            if min(h, w) >= 4:
                blocks.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c = out
        self.conv = nn.Sequential(*blocks)
        layers: list[nn.Module] = [nn.Flatten()]
        size = c * h * w
        for width in hidden:
            layers += [nn.Dropout(dropout), nn.Linear(size, width), nn.ReLU()]
            size = width
        self.fc = nn.Sequential(*layers)
        self.head = nn.Linear(size, classes)
        self.feature_dim = size

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x))  # (B, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
