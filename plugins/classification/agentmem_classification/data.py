"""Image data sets: arrays (N, C, H, W) float32, standardised, with int64 labels and fixed splits."""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agentmem.errors import NotFoundError

FASHION_DIR = Path(os.environ.get("AGENTMEM_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]


@dataclass
class ImageData:
    """Train/validation/test splits of one image data set. ``shift`` (pixels) and ``flip`` describe
    the augmentation that suits it during training."""

    name: str
    classes: list[str]
    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    shift: int = 0
    flip: bool = False

    @property
    def shape(self) -> tuple[int, int, int]:
        c, h, w = self.train[0].shape[1:]
        return int(c), int(h), int(w)


def _idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _split(x: np.ndarray, y: np.ndarray, n_val: int, seed: int) -> tuple[tuple[np.ndarray, ...], ...]:
    order = np.random.default_rng(seed).permutation(len(x))
    val, train = order[:n_val], order[n_val:]
    return (x[train], y[train]), (x[val], y[val])


def fashion_mnist(quick: bool = False, seed: int = 0) -> ImageData:
    """Fashion-MNIST: 60k training images (6k held out for validation) and the 10k test images.
    ``quick`` keeps 3,000 / 500 / 1,000 of them."""
    files = {k: FASHION_DIR / f"{k}-idx{3 if 'images' in k else 1}-ubyte.gz"
             for k in ("train-images", "train-labels", "t10k-images", "t10k-labels")}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise NotFoundError(f"Fashion-MNIST files missing ({', '.join(missing)}): run "
                            "`apt-get install dataset-fashion-mnist` or set AGENTMEM_FASHION_MNIST")

    def prep(images: np.ndarray) -> np.ndarray:
        return ((images.astype(np.float32) / 255.0 - 0.2860) / 0.3530)[:, None]  # (N, 1, 28, 28)

    x, y = prep(_idx(files["train-images"])), _idx(files["train-labels"]).astype(np.int64)
    xt, yt = prep(_idx(files["t10k-images"])), _idx(files["t10k-labels"]).astype(np.int64)
    train, val = _split(x, y, 6000, seed)
    if quick:
        train, val = (train[0][:3000], train[1][:3000]), (val[0][:500], val[1][:500])
        xt, yt = xt[:1000], yt[:1000]
    return ImageData("fashion-mnist", FASHION_CLASSES, train, val, (xt, yt), shift=2, flip=True)


def digits(quick: bool = False, seed: int = 0) -> ImageData:
    """scikit-learn's 1,797 8x8 digits: 25 % test, 10 % of the rest for validation (seeded);
    ``quick`` trains on 600 of the remaining images."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = ((bunch.images.astype(np.float32) / 16.0 - 0.3) / 0.4)[:, None]  # (N, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = len(x) // 4
    test, rest = order[:n_test], order[n_test:]
    train, val = _split(x[rest], y[rest], len(rest) // 10, seed + 1)
    if quick:
        train = (train[0][:600], train[1][:600])
    return ImageData("digits", [str(d) for d in range(10)], train, val, (x[test], y[test]))
