"""Inference-time steps for trained models: LoRA adapters (parameter-efficient fine-tuning), magnitude
pruning and dynamic int8 quantization, with helpers to measure size and latency.

Everything works on a copy; the caller's model is left as it was.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

LORA_KEYS = ("lora_a", "lora_b")


def _lora_class() -> type:
    import torch
    from torch import nn

    class LoRALinear(nn.Module):
        """``base(x) + (x @ A^T @ B^T) * alpha / r`` with ``base`` frozen; B starts at zero so the
        wrapped layer first computes exactly what the base layer did."""

        def __init__(self, base: nn.Linear, r: int, alpha: float) -> None:
            super().__init__()
            self.base = base
            self.r, self.scale = r, alpha / r
            self.lora_a = nn.Parameter(torch.randn(r, base.in_features) / math.sqrt(base.in_features))
            self.lora_b = nn.Parameter(torch.zeros(base.out_features, r))
            for p in self.base.parameters():
                p.requires_grad_(False)

        @property
        def weight(self) -> torch.Tensor:
            """The effective weight; fused Transformer inference paths read it instead of calling us."""
            return self.base.weight + (self.lora_b @ self.lora_a) * self.scale

        @property
        def bias(self) -> torch.Tensor | None:
            return self.base.bias

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.base(x) + (x @ self.lora_a.T @ self.lora_b.T) * self.scale

    return LoRALinear


def add_lora(model: torch.nn.Module, r: int = 4, alpha: float = 8.0, skip: tuple[str, ...] = ()) -> list[str]:
    """Freeze every parameter of ``model`` and wrap each ``nn.Linear`` (except those whose name starts
    with an entry of ``skip``) in a LoRA adapter of rank ``r``, in place. Returns the wrapped names."""
    from torch import nn

    lora = _lora_class()
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = []
    for name, module in list(model.named_modules()):
        # attention's out_proj is read as a raw weight by nn.MultiheadAttention, so it cannot be wrapped
        if isinstance(module, nn.Linear) and name and not name.endswith("out_proj") and \
                not any(name.startswith(s) for s in skip):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            layer = lora(module, min(r, module.in_features, module.out_features), alpha)
            setattr(parent, child, layer.to(module.weight.device))
            wrapped.append(name)
    return wrapped


def merge_lora(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` with every LoRA layer folded into a plain ``nn.Linear`` (W + scale * B A):
    the same function, and usable by the fused inference paths of PyTorch's Transformer layers."""
    import torch

    merged = copy.deepcopy(model)
    for name, module in list(merged.named_modules()):
        if hasattr(module, "lora_a") and hasattr(module, "base"):
            base = module.base
            with torch.no_grad():
                base.weight += (module.lora_b @ module.lora_a) * module.scale
            parent_name, _, child = name.rpartition(".")
            setattr(merged.get_submodule(parent_name) if parent_name else merged, child, base)
    return merged


def adapter_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Only the trainable (adapter) tensors of a model prepared with :func:`add_lora`."""
    return {k: v.detach().cpu() for k, v in model.named_parameters() if v.requires_grad}


def count(model: torch.nn.Module, trainable: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable)


def state_bytes(state: dict[str, Any]) -> int:
    """Bytes of the tensors of a state dict, each stored tensor counted once (tied weights share
    storage); packed int8 weights of quantized layers are unpacked to their tensors and counted."""
    seen: set[int] = set()

    def size(value: Any) -> int:
        if hasattr(value, "__getstate__") and type(value).__name__ == "ScriptObject":
            return size(value.__getstate__())  # packed quantized parameters
        if isinstance(value, tuple | list):
            return sum(size(v) for v in value)
        if hasattr(value, "element_size") and hasattr(value, "nelement"):
            if not value.is_quantized:  # unpacked quantized tensors are fresh objects each time
                if value.data_ptr() in seen:
                    return 0
                seen.add(value.data_ptr())
            return int(value.element_size() * value.nelement())
        return 0

    return sum(size(v) for v in state.values())


def model_bytes(model: torch.nn.Module) -> int:
    """Size of the model's weights in bytes (quantized layers at their packed int8 size)."""
    return state_bytes(model.state_dict())


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a model's first parameter or buffer (CPU when it has neither)."""
    import torch

    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


def prune(model: torch.nn.Module, amount: float = 0.5) -> tuple[torch.nn.Module, dict[str, float]]:
    """A copy of ``model`` with the ``amount`` fraction of smallest-magnitude weights of every Linear,
    Conv, LSTM/GRU and attention input projection set to zero (global L1 unstructured pruning, made
    permanent). Embeddings, norms and biases are kept."""
    from torch import nn
    from torch.nn.utils import prune as tprune

    pruned = copy.deepcopy(model)
    targets: list[tuple[nn.Module, str]] = []
    for m in pruned.modules():
        if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d):
            targets.append((m, "weight"))
        elif isinstance(m, nn.LSTM | nn.GRU):
            targets += [(m, n) for n, _ in m.named_parameters(recurse=False) if n.startswith("weight_")]
        elif isinstance(m, nn.MultiheadAttention) and m.in_proj_weight is not None:
            targets.append((m, "in_proj_weight"))
    tprune.global_unstructured(targets, pruning_method=tprune.L1Unstructured, amount=amount)
    for m, name in targets:
        tprune.remove(m, name)
    total = sum(getattr(m, n).numel() for m, n in targets)
    zeros = sum(int((getattr(m, n) == 0).sum()) for m, n in targets)
    dense = model_bytes(pruned)
    # stored sparse: the non-zero float32 values plus a one-bit-per-weight mask
    sparse = dense - 4 * total + 4 * (total - zeros) + (total + 7) // 8
    return pruned, {"sparsity": zeros / max(total, 1), "dense_bytes": dense, "sparse_bytes": sparse}


def quantize(model: torch.nn.Module) -> torch.nn.Module:
    """A CPU copy of ``model`` with Linear, LSTM and GRU layers dynamically quantized to int8."""
    import torch
    from torch import nn

    cpu = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings():  # eager-mode quantization is deprecated upstream but still supported
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(cpu, {nn.Linear, nn.LSTM, nn.GRU}, dtype=torch.qint8)


def latency_ms(fn: Callable[[], Any], repeats: int = 7) -> float:
    """Best-of-``repeats`` wall-clock milliseconds of ``fn()`` (after one warm-up call), without
    autograd; the minimum is the figure least disturbed by other processes on a shared machine."""
    import torch

    times = []
    with torch.inference_mode():
        fn()
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1000)
    return min(times)


def report(model: torch.nn.Module, evaluate: Callable[[torch.nn.Module], float],
           bench: Callable[[torch.nn.Module], Any], finetune: Callable[[torch.nn.Module], None],
           save_adapter: Callable[[dict[str, Any], float], int], *, skip: tuple[str, ...] = (),
           prune_amount: float = 0.5) -> dict[str, Any]:
    """Measure the three steps against the trained ``model``: its metric (``evaluate``, higher is
    better), weight size, and latency of ``bench(model)`` on CPU. ``finetune`` trains the LoRA copy's
    adapters in place; ``save_adapter(state, metric)`` stores them (weight memory) and returns the version."""
    import torch

    cpu = copy.deepcopy(model).cpu().eval()
    base = {"metric": evaluate(model), "bytes": model_bytes(cpu), "cpu_ms": latency_ms(lambda: bench(cpu))}
    out: dict[str, Any] = {"base": base}

    tuned = copy.deepcopy(model)
    wrapped = add_lora(tuned, skip=skip)
    finetune(tuned)
    tuned.eval()
    state = adapter_state(tuned)
    metric = evaluate(merge_lora(tuned))
    out["lora"] = {"metric": metric, "layers": len(wrapped), "trainable_params": count(tuned, True),
                   "total_params": count(tuned), "adapter_bytes": state_bytes(state),
                   "version": save_adapter(state, metric) if state else None}

    pruned, info = prune(model, prune_amount)
    metric = evaluate(pruned.eval())
    pruned.cpu()
    out["prune"] = {"metric": metric, **info, "cpu_ms": latency_ms(lambda: bench(pruned))}

    q = quantize(model)
    # PyTorch's fused Transformer path reads layer weights directly, which quantized layers lack
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.inference_mode():
            qmetric = evaluate(q)
        out["quantize"] = {"metric": qmetric, "bytes": model_bytes(q), "cpu_ms": latency_ms(lambda: bench(q))}
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return out
