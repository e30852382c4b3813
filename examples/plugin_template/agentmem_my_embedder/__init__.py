"""An agentmem plugin providing one embedder, ``my-embedder``: a template to copy.

Rename the package, the embedder and the entry point (``pyproject.toml``), then put your model in
``MyEmbedder``. Once the package is installed, agentmem finds it through the ``agentmem``
entry-point group; ``agentmem plugins`` lists it and ``agentmem.Memory(path, embedder="my-embedder")``
uses it.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

import agentmem
from agentmem.embedders import Embedder, normalize
from agentmem.hookspecs import Register

_WORD = re.compile(r"\w+")


class MyEmbedder(Embedder):
    """Words hashed into 64 buckets: a stand-in for a real model (texts are alike when they share words).

    A real model loads in ``__init__`` or on first use: agentmem builds the embedder only when a memory
    first asks for it, so importing this module stays cheap.
    """

    name = "my-embedder"
    backend = "numpy"
    # a model that reads only the start of a text sets how many characters it reads: longer texts
    # are then also embedded in passages of that size, so all of a text is found by meaning
    passage_chars: int | None = None

    @property
    def dim(self) -> int:
        # every memory records the dimension it was built with and refuses another
        return 64

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, each row of unit length."""
        vecs = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                vecs[row, zlib.crc32(word.encode()) % self.dim] += 1.0
        return normalize(vecs)


@agentmem.hookimpl
def register_embedders(register: Register) -> None:
    # name -> factory; a name another plugin also registers is a start-up error naming both
    register("my-embedder", MyEmbedder)
