"""Text embedders: one abstract method (``embed_batch``) and conveniences on top."""

from __future__ import annotations

import hashlib
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension ``dim``."""

    name: str = "embedder"
    backend: str = ""  # what computes the vectors ("torch", "onnx", "int8", ...), for reports
    # Texts longer than this many characters are also embedded in passages of about this size
    # (agentmem.ltm.passages), since the model reads only their start; None: it reads any length whole.
    passage_chars: int | None = None

    @property
    @abstractmethod
    def dim(self) -> int:
        """Vector dimension; memories record it and refuse a mismatch."""

    @abstractmethod
    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Return an array of shape (len(texts), dim), float32, each row of unit length."""

    def embed(self, text: str) -> np.ndarray:
        """Embed one text; shape (dim,)."""
        return self.embed_batch([text])[0]


def normalize(x: np.ndarray) -> np.ndarray:
    """Row-normalise to unit length in float32 (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


CHARS_PER_TOKEN = 3  # a passage of 3 characters per token fits the model's window (English averages ~4)


def window_chars(path: str | os.PathLike[str]) -> int | None:
    """``passage_chars`` for the sentence-transformers model in ``path``: its ``max_seq_length``
    tokens (from ``sentence_bert_config.json``) at :data:`CHARS_PER_TOKEN`; None if it names none."""
    import json
    from pathlib import Path

    try:
        tokens = json.loads((Path(path) / "sentence_bert_config.json").read_text()).get("max_seq_length")
    except (OSError, ValueError):
        return None
    return CHARS_PER_TOKEN * int(tokens) if tokens else None


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model loaded from a local directory (never from a hub)."""

    backend = "torch"

    def __init__(self, name: str, path: str, batch_size: int = 32) -> None:
        self.name = name
        self._path = path
        self._batch_size = batch_size
        self._model: Any = None
        self._dim: int | None = None
        self.passage_chars = window_chars(path)

    def _load(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()

            from agentmem.devices import device

            self._model = SentenceTransformer(self._path, device=str(device()))
            get_dim = getattr(self._model, "get_embedding_dimension", None) or \
                self._model.get_sentence_embedding_dimension
            self._dim = int(get_dim())
        return self._model

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._load()
        assert self._dim is not None
        return self._dim

    # Texts per call up to which encoding runs on one torch thread. A single query is too small to
    # split across threads; when another process keeps a core busy, torch's second thread waits on
    # it: one query took 296 ms with the default 2 threads against 12.9 ms on one thread here (on a
    # quiet machine the second thread saves ~2.5 ms per query: MEASURED.md, 174/s vs 121/s).
    small_batch = 4

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        threads = torch.get_num_threads()
        single = len(texts) <= self.small_batch and threads > 1
        if single:
            torch.set_num_threads(1)
        try:
            out = model.encode(list(texts), batch_size=self._batch_size, convert_to_numpy=True,
                               normalize_embeddings=True, show_progress_bar=False)
        finally:
            if single:
                torch.set_num_threads(threads)
        return np.ascontiguousarray(out, dtype=np.float32)


_TOKEN = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder(Embedder):
    """Feature hashing of words and character trigrams: no model, deterministic, fast.

    Useful where no neural model can run and for tests of storage; semantic quality is lexical only.
    """

    name = "hash"
    backend = "numpy"

    def __init__(self, dim: int = 256) -> None:
        self._dim = dim

    @property
    def dim(self) -> int:
        return self._dim

    def _features(self, text: str) -> list[str]:
        words = [w.lower() for w in _TOKEN.findall(text)]
        grams = [f"#{w[i:i + 3]}" for w in words for i in range(max(1, len(w) - 2))]
        return words + grams

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feat in self._features(text):
                h = int.from_bytes(hashlib.blake2b(feat.encode(), digest_size=8).digest(), "little")
                out[row, h % self._dim] += 1.0 if (h >> 63) & 1 else -1.0
        return normalize(out)
