"""Helpers for model and task plugins: run options, data lookup, a feature memory, and a training
loop with early stopping that records gradient statistics and activations in short-term memory.

A task plugin (see ``register_tasks`` in :mod:`agentmem.hookspecs`) typically does::

    opts = RunOptions(epochs=10)
    mem = feature_memory(path, dim=model.feature_dim)        # weights + example embeddings live here
    result = fit(model, train_batches, loss_fn, validate, opts, memory=mem, name="classification-cnn")
    version = save_checkpoint(mem, "classification-cnn-digits", model, {"accuracy": 0.98, ...})
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agentmem.embedders import Embedder
from agentmem.errors import EmbedderMismatchError, InvalidInputError, NotFoundError, RunMemoryError
from agentmem.hookspecs import Register, hookimpl

if TYPE_CHECKING:
    import torch

    from agentmem.memory import Memory


@dataclass
class RunOptions:
    """What ``agentmem run`` passes to a task. ``None`` means "the task's default"."""

    epochs: int | None = None  # maximum epochs (early stopping may end sooner)
    quick: bool = False  # tiny data and model: a smoke run in seconds (tests, first try)
    memory: bool = False  # also run the memory-augmented mode and report both
    compress: bool = False  # PEFT (LoRA), pruning and dynamic quantization, each measured
    seed: int = 0
    batch_size: int | None = None
    lr: float | None = None
    patience: int | None = None  # epochs without validation improvement before stopping
    progress: bool = True
    tensorboard: str | None = None  # directory for TensorBoard event files (needs `tensorboard`)
    threads: int | None = None  # torch CPU threads
    extra: dict[str, Any] = field(default_factory=dict)  # task-specific knobs (`--set`), see check_settings

    def __post_init__(self) -> None:
        # each name is also the command-line flag, so one message serves both
        for name in ("epochs", "batch_size", "patience", "threads"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InvalidInputError(f"--{name.replace('_', '-')} must be >= 1, got {value!r}")
        if self.lr is not None and (isinstance(self.lr, bool) or not isinstance(self.lr, int | float)
                                    or not math.isfinite(self.lr) or self.lr <= 0):
            raise InvalidInputError(f"--lr must be a positive number, got {self.lr!r}")
        if not isinstance(self.extra, dict):
            raise InvalidInputError(f"extra must be a dict of --set KEY=VALUE pairs, got {type(self.extra).__name__}")
        if "hparams" in self.extra and not isinstance(self.extra["hparams"], dict):
            raise InvalidInputError(f"--set hparams must be a JSON object of model sizes, e.g. "
                                    f"hparams='{{\"d\": 256}}', got {self.extra['hparams']!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_SETTINGS = ("hparams",)  # the --set keys of a task that declares none


def check_settings(task: str, declared: Any, extra: dict[str, Any]) -> None:
    """Refuse ``--set`` keys that task ``task`` does not read (it declares them when registering:
    ``register(name, factory, settings=(...))``; ``hparams`` when it declares nothing)."""
    valid = sorted(declared if declared is not None else DEFAULT_SETTINGS)
    for key in extra:
        if key not in valid:
            raise InvalidInputError(f"unknown --set key {key!r} for task {task!r}; valid: {', '.join(valid)}")


def model_kwargs(cls: type, spec: dict[str, Any], model: str, *, set_by_task: tuple[str, ...] = ()) -> dict[str, Any]:
    """``spec["hparams"]`` checked against the keyword-only parameters of ``cls.__init__`` (less
    ``quick`` and the ones the factory fills from the spec, ``set_by_task``): a model factory's way to
    refuse an unknown size override with a message listing the valid ones."""
    import inspect

    hparams = spec.get("hparams") or {}
    if not isinstance(hparams, dict):
        raise InvalidInputError(f"hparams must be a dict of size overrides, got {hparams!r}")
    params = inspect.signature(cls).parameters.values()
    valid = sorted(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY
                   and p.name not in ("quick", *set_by_task))
    for key in hparams:
        if key not in valid:
            raise InvalidInputError(f"unknown hparams key {key!r} for model {model!r} ({cls.__name__}); valid: "
                                    f"{', '.join(valid)}")
    return dict(hparams)


# --- data and memory ----------------------------------------------------------------------------


def data_roots() -> list[Path]:
    """Where shared data sets are looked for: ``$AGENTMEM_DATA``, then ``../shared/data`` beside the
    working directory and beside the source checkout."""
    roots = []
    if os.environ.get("AGENTMEM_DATA"):
        roots.append(Path(os.environ["AGENTMEM_DATA"]))
    roots.append(Path.cwd().parent / "shared" / "data")
    roots.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    return roots


def find_data(relative: str, what: str) -> Path:
    """The first existing ``<root>/<relative>`` of :func:`data_roots`, or a NotFoundError naming them."""
    for root in data_roots():
        if (root / relative).exists():
            return root / relative
    tried = ", ".join(str(r / relative) for r in data_roots())
    raise NotFoundError(f"{what} not found (tried {tried}); set AGENTMEM_DATA to the folder holding "
                        f"{relative.split('/')[0]}/")


class FeatureEmbedder(Embedder):
    """The embedder of a memory that stores model features: it has a dimension but cannot embed text,
    so every write and query passes ``embeddings=`` / ``embedding=`` computed by the model."""

    def __init__(self, dim: int) -> None:
        self.name = f"features-{dim}"
        self._dim = dim

    @property
    def dim(self) -> int:
        return self._dim

    def embed_batch(self, texts: Any) -> np.ndarray:
        raise InvalidInputError(f"memory embedder {self.name!r} holds model features and cannot embed text; "
                                "pass embeddings=... (remember) or embedding=... (recall)")


class _FeaturePlugin:
    def __init__(self, dim: int) -> None:
        self.dim = dim

    @hookimpl
    def register_embedders(self, register: Register) -> None:
        register(f"features-{self.dim}", lambda: FeatureEmbedder(self.dim))


def feature_embedder(dim: int) -> str:
    """Register (once) the embedder ``features-<dim>`` and return its name."""
    from agentmem.plugins import load_plugins, register_plugin

    if dim < 1:
        raise InvalidInputError(f"feature dimension must be >= 1, got {dim}")
    name = f"features-{dim}"
    if load_plugins().get_plugin(f"agentmem.features.{dim}") is None:
        register_plugin(_FeaturePlugin(dim), name=f"agentmem.features.{dim}")
    return name


def feature_memory(path: str | Path, dim: int, **options: Any) -> Memory:
    """Open a memory whose vectors are ``dim``-dimensional model features (exact search, no dedup:
    every training example is kept). A directory built with other features (another run's model size
    or ``--quick``) raises :class:`~agentmem.errors.RunMemoryError`."""
    from agentmem.memory import Memory

    options = {"dedup": False, "ann_threshold": 10**8, "stm_items": 4096, **options}
    name = feature_embedder(dim)
    try:
        return Memory(path, embedder=name, **options)
    except EmbedderMismatchError as exc:
        # the usual cause: `agentmem run --path DIR` again with another model size or --quick
        what = "another run's memory" if (exc.stored or "").startswith("features-") else "a memory of no run"
        raise RunMemoryError(f"{path} holds {what} (embedder {exc.stored!r}; this model's features "
                             f"are {name!r}: another model, size or --quick); give this run its own directory: "
                             "leave out `agentmem run --path` (one per task, model, dataset, --quick and hparams "
                             "under $AGENTMEM_HOME/runs) or pass a new one", stored=exc.stored, wanted=name) from exc


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32), zero rows nudged so they still have a direction."""
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    out = x / np.maximum(n, 1e-12)
    out[n[..., 0] < 1e-12] = 1.0 / math.sqrt(x.shape[-1])
    return out


# --- training -----------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def autocast(device: Any) -> contextlib.AbstractContextManager[Any]:
    """Mixed precision (bfloat16) on CUDA; a no-op elsewhere."""
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def grad_stats(model: torch.nn.Module) -> dict[str, float]:
    """L2 norm of the gradient of each top-level child module (after ``backward``)."""
    out: dict[str, float] = {}
    for name, p in model.named_parameters():
        if p.grad is not None:
            top = name.split(".")[0]
            out[top] = out.get(top, 0.0) + float(p.grad.detach().float().pow(2).sum())
    return {k: math.sqrt(v) for k, v in out.items()}


@dataclass
class FitResult:
    best: float  # best validation score (higher is better)
    epochs: int  # epochs run
    train_s: float
    history: list[dict[str, float]]


class StmRecorder:
    """Writes one STM item per epoch (loss, validation score, gradient norms as metadata) with the
    activations of a probe batch attached as tensors on the device. ``probe()`` returns
    ``(activations, embedding)`` for the current model."""

    def __init__(self, memory: Memory | None, name: str, probe: Callable[[], tuple[dict[str, Any], Any]]
                 ) -> None:
        self.memory, self.name, self.probe = memory, name, probe
        self.ids: list[int] = []

    def record(self, kind: str, step: int, metrics: dict[str, float]) -> int | None:
        if self.memory is None:
            return None
        acts, emb = self.probe()
        text = f"{self.name} {kind} {step}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        meta = {"kind": kind, "step": step, "run": self.name, **{k: float(v) for k, v in metrics.items()}}
        i = self.memory.remember(text, meta, {"agent": self.name}, embedding=unit(np.asarray(emb)),
                                 activations=acts)
        self.ids.append(i)
        return i


def fit(model: torch.nn.Module, train_batches: Callable[[int], Iterable[Any]],
        loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor], validate: Callable[[], float],
        opts: RunOptions, *, epochs: int, lr: float, recorder: StmRecorder | None = None,
        weight_decay: float = 0.0, clip: float = 1.0, warmup_steps: int = 0, patience: int = 3,
        params: Iterable[torch.nn.Parameter] | None = None, desc: str = "train") -> FitResult:
    """Train with AdamW (linear warm-up, cosine decay), validate after every epoch (higher is
    better; ties count as improvement), stop after ``opts.patience`` (else ``patience``) epochs
    without improvement, and restore the best weights.

    ``train_batches(epoch)`` yields batches; ``loss_fn(model, batch)`` returns a scalar loss.
    """
    import torch

    trainable = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    loop = _Loop(torch.optim.AdamW(trainable, lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98)),
                 trainable, lr, warmup_steps, clip)
    writer = _tensorboard(opts.tensorboard, desc)
    best, best_state, bad, history = -math.inf, None, 0, []
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        losses, grads = loop.epoch(model, list(train_batches(epoch)), loss_fn, epochs,
                                   f"{desc} {epoch + 1}/{epochs}", opts.progress)
        model.eval()
        score = float(validate())
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "val": score,
               **{f"grad/{k}": v for k, v in grads.items()}}
        history.append(row)
        if writer is not None:
            for k, v in row.items():
                writer.add_scalar(k, v, epoch + 1)
        if recorder is not None:
            recorder.record("epoch", epoch + 1, {k: v for k, v in row.items() if k != "epoch"})
        if opts.progress:
            print(f"{desc} epoch {epoch + 1}: loss {row['loss']:.4f} val {score:.4f}", flush=True)
        if score >= best:  # a tie goes to the later, longer-trained weights
            best, bad, best_state = score, 0, copy.deepcopy(model.state_dict())
        else:
            bad += 1
            if bad >= (opts.patience or patience):
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    if writer is not None:
        writer.close()
    return FitResult(best, len(history), time.perf_counter() - start, history)


class _Loop:
    """One optimiser's steps across epochs: learning-rate schedule, clipping, gradient statistics."""

    def __init__(self, optim: Any, params: list[Any], lr: float, warmup: int, clip: float) -> None:
        self.optim, self.params, self.lr, self.warmup, self.clip = optim, params, lr, warmup, clip
        self.step = 0

    def epoch(self, model: Any, batches: list[Any], loss_fn: Callable[[Any, Any], Any], epochs: int,
              desc: str, progress: bool) -> tuple[list[float], dict[str, float]]:
        """Train on ``batches``; return the losses and the mean (pre-clipping) gradient norm per
        top-level module, sampled every 10th step."""
        import torch
        from tqdm.auto import tqdm

        total = len(batches) * epochs
        warmup = min(self.warmup, total // 5)
        losses: list[float] = []
        grads: dict[str, float] = {}
        samples = 0
        for batch in tqdm(batches, desc=desc, leave=False, disable=not progress):
            for g in self.optim.param_groups:
                g["lr"] = self.lr * _schedule(self.step, warmup, total)
            loss = loss_fn(model, batch)
            self.optim.zero_grad(set_to_none=True)
            loss.backward()
            if len(losses) % 10 == 0:
                samples += 1
                for k, v in grad_stats(model).items():
                    grads[k] = grads.get(k, 0.0) + v
            torch.nn.utils.clip_grad_norm_(self.params, self.clip)
            self.optim.step()
            losses.append(float(loss.detach()))
            self.step += 1
        return losses, {k: v / max(samples, 1) for k, v in grads.items()}


def _schedule(step: int, warmup: int, total: int) -> float:
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress))


def _tensorboard(logdir: str | None, name: str) -> Any:
    if not logdir:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise InvalidInputError("--tensorboard needs the `tensorboard` package: pip install tensorboard") from exc
    return SummaryWriter(str(Path(logdir) / name))


def batches(n: int, size: int, *, shuffle: bool, seed: int = 0) -> Iterator[np.ndarray]:
    """Index batches over ``range(n)``; shuffled with ``seed`` when asked."""
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    for i in range(0, n, size):
        yield order[i:i + size]


# --- checkpoints --------------------------------------------------------------------------------


def save_checkpoint(memory: Memory, name: str, model: torch.nn.Module, metadata: dict[str, Any]) -> int:
    """Save ``model.state_dict()`` as the next version of ``name`` in the weight memory (tied tensors,
    e.g. a shared embedding and output layer, are stored once and load back under every key)."""
    return memory.weights.save(name, model.state_dict(), metadata=metadata)


def load_checkpoint(memory: Memory, name: str,
                    version: int | None = None) -> tuple[dict[str, Any], dict[str, Any], int]:
    """``(state_dict, metadata, version)`` of a checkpoint (the current version by default)."""
    state = memory.weights.load(name, version)
    versions = {v.version: v for v in memory.weights.versions(name)}
    chosen = version if version is not None else next(v.version for v in versions.values() if v.current)
    return state, versions[chosen].metadata, chosen
