"""Pick the compute device once: CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import functools
import os
from typing import Any


@functools.cache
def device() -> Any:
    """Return the ``torch.device`` agentmem uses. ``AGENTMEM_DEVICE`` (e.g. "cpu") overrides the choice."""
    import torch

    forced = os.environ.get("AGENTMEM_DEVICE")
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@functools.cache
def has_cuda() -> bool:
    """True when a CUDA device is usable (imports torch); asked on every exact search, so kept."""
    return str(device()).startswith("cuda")
