"""The classification task: train any image classifier model, evaluate accuracy, and compare with
kNN interpolation over the training examples kept in the vector memory.

A model for this task is built from ``{"kind": "classifier", "input": "image", "shape": (C, H, W),
"classes": K, "quick": bool}`` and provides ``features(x) -> (B, D)``, ``head`` (features -> logits),
``feature_dim`` and ``forward(x) = head(features(x))``.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from agentmem import compress
from agentmem.activations import capture
from agentmem.devices import device
from agentmem.memory import Memory
from agentmem.plugins import get
from agentmem.training import (
    RunOptions,
    StmRecorder,
    autocast,
    batches,
    feature_memory,
    fit,
    load_checkpoint,
    save_checkpoint,
    seed_everything,
    unit,
)
from agentmem_classification.data import ImageData

# per model: maximum epochs and learning rate of the full recipe
RECIPES = {"cnn": (30, 2e-3), "lstm": (30, 2e-3), "transformer": (60, 1e-3)}
LAMBDAS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
TAUS = (0.02, 0.05, 0.1)
K = 16


def predict(net: torch.nn.Module, x: np.ndarray, bs: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(class probabilities (N, K), features (N, D)) of images ``x`` (N, C, H, W)."""
    dev = compress.model_device(net)
    probs, feats = [], []
    with torch.inference_mode(), autocast(dev):
        for i in range(0, len(x), bs):
            f = net.features(torch.from_numpy(x[i:i + bs]).to(dev))
            probs.append(torch.softmax(net.head(f).float(), -1).cpu().numpy())
            feats.append(f.float().cpu().numpy())
    return np.concatenate(probs), np.concatenate(feats)


def accuracy(net: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    return float((predict(net, x)[0].argmax(1) == y).mean())


def augment(x: torch.Tensor, shift: int, flip: bool, gen: torch.Generator) -> torch.Tensor:
    """Random translation by up to ``shift`` pixels (zero fill) and horizontal flips, per image."""
    b, _, h, w = x.shape
    if shift:
        padded = F.pad(x, (shift, shift, shift, shift))
        dy, dx = (torch.randint(0, 2 * shift + 1, (2, b), generator=gen))
        rows = (dy[:, None] + torch.arange(h))[:, :, None]  # (B, H, 1)
        cols = (dx[:, None] + torch.arange(w))[:, None, :]  # (B, 1, W)
        x = padded[torch.arange(b)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)  # (B, C, H, W)
    if flip:
        mask = torch.rand(b, generator=gen) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(-1), x)
    return x.contiguous()


def neighbours(mem: Memory, scope: dict[str, str], feats: np.ndarray, k: int = K) -> tuple[np.ndarray, np.ndarray]:
    """Labels (N, k) and cosine similarities (N, k) of the stored training examples nearest to ``feats``."""
    ids, sims = np.zeros((len(feats), k), np.int64), np.zeros((len(feats), k), np.float32)
    queries = unit(feats)
    for i in range(0, len(feats), 512):
        for row, hits in enumerate(mem.search_vectors(queries[i:i + 512], k, scope)):
            ids[i + row, :len(hits)] = [h[0] for h in hits]
            sims[i + row, :len(hits)] = [h[1] for h in hits]
    items = mem.get_many(np.unique(ids).tolist())
    labels = np.vectorize(lambda j: items[int(j)].metadata["label"] if int(j) in items else -1)(ids)
    return labels.astype(np.int64), sims


def knn_probs(labels: np.ndarray, sims: np.ndarray, classes: int, tau: float) -> np.ndarray:
    """Class distribution of the neighbours, each weighted by softmax(similarity / tau)."""
    w = np.exp((sims - sims.max(1, keepdims=True)) / tau) * (labels >= 0)
    out = np.zeros((len(labels), classes), np.float32)
    np.add.at(out, (np.repeat(np.arange(len(labels)), labels.shape[1]), labels.clip(0).ravel()), w.ravel())
    return out / np.maximum(out.sum(1, keepdims=True), 1e-12)


def tune_knn(mem: Memory, scope: dict[str, str], net: torch.nn.Module, data: ImageData) -> dict[str, float]:
    """Choose the interpolation weight and temperature on the validation split."""
    probs, feats = predict(net, data.val[0])
    labels, sims = neighbours(mem, scope, feats)
    best = {"lambda": 0.0, "tau": TAUS[0], "val_plain": float((probs.argmax(1) == data.val[1]).mean())}
    best["val_memory"] = best["val_plain"]
    for tau in TAUS:
        pk = knn_probs(labels, sims, probs.shape[1], tau)
        for lam in LAMBDAS:
            acc = float((((1 - lam) * probs + lam * pk).argmax(1) == data.val[1]).mean())
            if acc > best["val_memory"]:
                best.update({"lambda": lam, "tau": tau, "val_memory": acc})
    return best


def knn_accuracy(mem: Memory, scope: dict[str, str], net: torch.nn.Module, x: np.ndarray, y: np.ndarray,
                 params: dict[str, float]) -> float:
    probs, feats = predict(net, x)
    labels, sims = neighbours(mem, scope, feats)
    mixed = (1 - params["lambda"]) * probs + params["lambda"] * knn_probs(labels, sims, probs.shape[1], params["tau"])
    return float((mixed.argmax(1) == y).mean())


class ClassificationTask:
    """``run`` trains and evaluates; ``evaluate`` reloads a checkpoint from the weight memory."""

    name = "classification"

    def run(self, *, path: Path, model: str, dataset: str, options: RunOptions) -> dict[str, Any]:
        opts = options
        seed_everything(opts.seed)
        data: ImageData = get("datasets", dataset).obj(quick=opts.quick, seed=opts.seed)
        spec = {"kind": "classifier", "input": "image", "shape": list(data.shape), "classes": len(data.classes),
                "quick": opts.quick, "hparams": opts.extra.get("hparams", {})}
        dev = device()
        net = get("models", model).obj(spec).to(dev)
        name = f"classification-{model}-{dataset}"
        with feature_memory(path, net.feature_dim) as mem:
            recorder = StmRecorder(mem, name, lambda: _probe(net, data.val[0][:32]))
            fitted = self._fit(net, data, opts, model, recorder)
            plain = {"accuracy": accuracy(net, *data.test)}
            scope = {"agent": name, "session": uuid.uuid4().hex[:12]}
            _remember_examples(mem, net, data, scope)
            result: dict[str, Any] = {"task": self.name, "model": model, "dataset": dataset, "metrics": plain,
                                      "train_s": round(fitted.train_s, 2), "epochs": fitted.epochs,
                                      "memory_path": str(path), "examples": {"count": len(data.train[1]),
                                                                             "scope": scope}}
            knn = None
            if opts.memory:
                knn = tune_knn(mem, scope, net, data)
                result["plain_metrics"] = plain
                result["metrics"] = {"accuracy": knn_accuracy(mem, scope, net, *data.test, knn)}
                result["memory_mode"] = {"kind": "knn", "k": K, **knn,
                                         "gain": result["metrics"]["accuracy"] - plain["accuracy"]}
            meta = {"task": self.name, "model": model, "dataset": dataset, "spec": spec, "seed": opts.seed,
                    "quick": opts.quick, "metrics": result["metrics"], "plain_metrics": plain, "knn": knn,
                    "scope": scope, "history": fitted.history}
            version = save_checkpoint(mem, name, net, meta)
            result["weights"] = {"name": name, "version": version}
            recorder.record("inference", version, result["metrics"])
            if opts.compress:
                result["compression"] = self._compress(mem, name, version, net, data, opts)
        return result

    def _fit(self, net: torch.nn.Module, data: ImageData, opts: RunOptions, model: str,
             recorder: StmRecorder) -> Any:
        epochs, lr = RECIPES.get(model, (20, 1e-3))
        epochs = opts.epochs or (3 if opts.quick else epochs)
        bs = opts.batch_size or (32 if opts.quick else 128)
        dev = compress.model_device(net)
        x, y = torch.from_numpy(data.train[0]), torch.from_numpy(data.train[1])
        gen = torch.Generator().manual_seed(opts.seed)

        def loss(m: torch.nn.Module, idx: np.ndarray) -> torch.Tensor:
            xb = augment(x[idx], data.shift, data.flip, gen).to(dev)
            with autocast(dev):
                return F.cross_entropy(m(xb).float(), y[idx].to(dev), label_smoothing=0.05)

        return fit(net, lambda e: batches(len(y), bs, shuffle=True, seed=opts.seed * 1000 + e), loss,
                   lambda: accuracy(net, *data.val), opts, epochs=epochs, lr=opts.lr or lr,
                   recorder=recorder, weight_decay=1e-4, warmup_steps=100, patience=6, desc=f"{model}/{data.name}")

    def _compress(self, mem: Memory, name: str, version: int, net: torch.nn.Module, data: ImageData,
                  opts: RunOptions) -> dict[str, Any]:
        bench_x = torch.from_numpy(data.test[0][:256])

        def finetune(m: torch.nn.Module) -> None:
            tune = RunOptions(**{**opts.to_dict(), "epochs": 1, "patience": 1})
            self._fit(m, data, tune, "lora", StmRecorder(None, name, lambda: ({}, None)))

        def save(state: dict[str, Any], metric: float) -> int:
            return mem.weights.save(f"{name}.lora", state, {"base": name, "base_version": version,
                                                            "accuracy": metric})

        return compress.report(net, lambda m: accuracy(m, *data.test), lambda m: m(bench_x), finetune, save)

    def evaluate(self, *, path: Path, model: str, dataset: str, options: RunOptions,
                 version: int | None = None) -> dict[str, Any]:
        """Rebuild the model from the weight memory and evaluate it again on the same test split."""
        name = f"classification-{model}-{dataset}"
        with Memory(path, read_only=True, ann_threshold=10**8) as mem:
            state, meta, version = load_checkpoint(mem, name, version)
            data: ImageData = get("datasets", dataset).obj(quick=meta["quick"], seed=meta["seed"])
            net = get("models", model).obj(meta["spec"])
            net.load_state_dict(state)
            net.to(device()).eval()
            plain = {"accuracy": accuracy(net, *data.test)}
            result = {"task": self.name, "model": model, "dataset": dataset, "metrics": plain,
                      "weights": {"name": name, "version": version}}
            if meta.get("knn") is not None:
                result["plain_metrics"] = plain
                result["metrics"] = {"accuracy": knn_accuracy(mem, meta["scope"], net, *data.test, meta["knn"])}
        return result


def _probe(net: torch.nn.Module, x: np.ndarray) -> tuple[dict[str, Any], np.ndarray]:
    """Activations of every leaf module on a small batch, and their mean feature vector."""
    was_training = net.training
    net.eval()
    with torch.inference_mode(), capture(net) as acts:
        feats = net.features(torch.from_numpy(x).to(compress.model_device(net)))
    net.train(was_training)
    return dict(acts), feats.float().mean(0).cpu().numpy()


def _remember_examples(mem: Memory, net: torch.nn.Module, data: ImageData, scope: dict[str, str]) -> list[int]:
    """Every training image's feature vector, with its label, into the vector memory."""
    _, feats = predict(net, data.train[0])
    labels = data.train[1].tolist()
    texts = [f"{data.name} training image {i}: {data.classes[c]}" for i, c in enumerate(labels)]
    metas = [{"label": int(c), "index": i, "split": "train"} for i, c in enumerate(labels)]
    ids = mem.remember_many(texts, metas, scope, embeddings=unit(feats), progress=False)
    mem.consolidate()
    return ids
