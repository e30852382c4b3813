"""``TranslationTask``: the run / evaluate entry points of the translation task."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agentmem import compress
from agentmem.activations import capture
from agentmem.devices import device
from agentmem.memory import Memory
from agentmem.plugins import get
from agentmem.training import (
    RunOptions,
    StmRecorder,
    feature_memory,
    fit,
    load_checkpoint,
    save_checkpoint,
    seed_everything,
)
from agentmem_translation import tm
from agentmem_translation.data import Split, TranslationData
from agentmem_translation.task import (
    K_PAIRS,
    RECIPES,
    bleu,
    build,
    length_batches,
    memory_bleu,
    nll,
    translate,
    tune_memory,
    val_loss,
)


class TranslationTask:
    """``run`` trains and evaluates; ``evaluate`` reloads a checkpoint from the weight memory."""

    name = "translation"

    def run(self, *, path: Path, model: str, dataset: str, options: RunOptions) -> dict[str, Any]:
        opts = options
        seed_everything(opts.seed)
        data: TranslationData = get("datasets", dataset).obj(quick=opts.quick, seed=opts.seed)
        net, spec = build(model, data, opts.quick, opts.extra.get("hparams"))
        dev = device()
        net.to(dev)
        name = f"translation-{model}-{dataset}"
        with feature_memory(path, net.feature_dim) as mem:
            recorder = StmRecorder(mem, name, lambda: _probe(net, data.val))
            fitted = self._fit(net, data, opts, model, recorder)
            plain = {"bleu": bleu(translate(net, data, data.test), data.test.tgt)}
            scope = {"agent": name, "session": uuid.uuid4().hex[:12]}
            tm.remember_pairs(mem, net, data, scope, dev)
            result: dict[str, Any] = {"task": self.name, "model": model, "dataset": dataset, "metrics": plain,
                                      "train_s": round(fitted.train_s, 2), "epochs": fitted.epochs,
                                      "memory_path": str(path),
                                      "examples": {"count": len(data.train.src), "scope": scope}}
            params = None
            if opts.memory:
                params = tune_memory(mem, scope, net, data, opts.quick)
                result["plain_metrics"] = plain
                result["metrics"] = {"bleu": memory_bleu(mem, scope, net, data, params)}
                result["memory_mode"] = {"kind": "translation-memory", "pairs": K_PAIRS, **params,
                                         "gain": result["metrics"]["bleu"] - plain["bleu"]}
            meta = {"task": self.name, "model": model, "dataset": dataset, "spec": spec, "seed": opts.seed,
                    "quick": opts.quick, "metrics": result["metrics"], "plain_metrics": plain, "tm": params,
                    "scope": scope, "history": fitted.history}
            version = save_checkpoint(mem, name, net, meta)
            result["weights"] = {"name": name, "version": version}
            recorder.record("inference", version, result["metrics"])
            if opts.compress:
                result["compression"] = self._compress(mem, name, version, net, data, opts)
        return result

    def _fit(self, net: torch.nn.Module, data: TranslationData, opts: RunOptions, model: str,
             recorder: StmRecorder | None) -> Any:
        epochs, lr = RECIPES.get(model, (20, 5e-4))
        epochs = opts.epochs or (2 if opts.quick else epochs)
        bs = opts.batch_size or (32 if opts.quick else 128)
        dev = compress.model_device(net)
        return fit(net, lambda e: length_batches(data.train, bs, opts.seed * 1000 + e),
                   lambda m, idx: nll(m, data.train, idx, dev, 0.1), lambda: -val_loss(net, data.val, dev),
                   opts, epochs=epochs, lr=opts.lr or (3e-3 if opts.quick else lr), recorder=recorder,
                   weight_decay=1e-4, warmup_steps=400, desc=f"{model}/{data.name}")

    def _compress(self, mem: Memory, name: str, version: int, net: torch.nn.Module, data: TranslationData,
                  opts: RunOptions) -> dict[str, Any]:
        sample = Split(*(getattr(data.test, f)[:64] for f in ("src", "tgt", "src_ids", "tgt_ids")))

        def finetune(m: torch.nn.Module) -> None:
            tune = RunOptions(**{**opts.to_dict(), "epochs": 1, "patience": 1})
            self._fit(m, data, tune, "lora", None)

        def save(state: dict[str, Any], metric: float) -> int:
            return mem.weights.save(f"{name}.lora", state, {"base": name, "base_version": version, "bleu": metric})

        return compress.report(net, lambda m: bleu(translate(m, data, data.test), data.test.tgt),
                               lambda m: translate(m, data, sample), finetune, save, skip=("generator",))

    def evaluate(self, *, path: Path, model: str, dataset: str, options: RunOptions,
                 version: int | None = None) -> dict[str, Any]:
        """Rebuild the model from the weight memory and score the same test set again."""
        name = f"translation-{model}-{dataset}"
        with Memory(path, read_only=True, ann_threshold=10**8) as mem:
            state, meta, version = load_checkpoint(mem, name, version)
            data: TranslationData = get("datasets", dataset).obj(quick=meta["quick"], seed=meta["seed"])
            net, _ = build(model, data, meta["quick"], meta["spec"].get("hparams"))
            net.load_state_dict(state)
            net.to(device()).eval()
            plain = {"bleu": bleu(translate(net, data, data.test), data.test.tgt)}
            result = {"task": self.name, "model": model, "dataset": dataset, "metrics": plain,
                      "weights": {"name": name, "version": version}}
            if meta.get("tm") is not None:
                result["plain_metrics"] = plain
                result["metrics"] = {"bleu": memory_bleu(mem, meta["scope"], net, data, meta["tm"])}
        return result


def _probe(net: torch.nn.Module, split: Split) -> tuple[dict[str, Any], np.ndarray]:
    """Activations of every leaf module on a few validation pairs, and their mean pooled source state."""
    was_training = net.training
    net.eval()
    dev = compress.model_device(net)
    src = tm.pad_batch(split.src_ids[:16], dev)
    tgt = tm.pad_batch(split.tgt_ids[:16], dev)
    with torch.inference_mode(), capture(net) as acts:
        enc = net.encode(src)
        net.decode(tgt[:, :-1], enc)
        vec = net.pool(enc).float().mean(0).cpu().numpy()
    net.train(was_training)
    return dict(acts), vec
