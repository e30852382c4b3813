"""Capture model activations with forward hooks, for short-term memory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def capture(model: Any, layers: tuple[str, ...] | None = None) -> Iterator[dict[str, Any]]:
    """Record the output tensor of each named leaf module (or of ``layers``) during the block.

    Yields a dict filled in as the forward pass runs: module name -> detached output tensor.
    """
    acts: dict[str, Any] = {}
    handles = []
    for name, module in model.named_modules():
        is_leaf = not any(True for _ in module.children())
        if (layers is None and is_leaf and name) or (layers is not None and name in layers):
            def hook(_m: Any, _inp: Any, out: Any, _name: str = name) -> None:
                if hasattr(out, "detach"):
                    acts[_name] = out.detach()

            handles.append(module.register_forward_hook(hook))
    try:
        yield acts
    finally:
        for h in handles:
            h.remove()
