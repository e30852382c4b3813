"""``RecommendationTask``: the run / evaluate entry points of the recommendation task."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agentmem import compress
from agentmem.activations import capture
from agentmem.devices import device
from agentmem.errors import InvalidInputError
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
from agentmem_recommendation.data import Interactions
from agentmem_recommendation.task import (
    MAX_LEN,
    NEGATIVES,
    combine,
    left_pad,
    length_batches,
    memory_parts,
    model_scores,
    popularity,
    positions_per_batch,
    rank_metrics,
    remember_interactions,
    remember_profiles,
    train_loss,
    trainable_users,
    tune_weights,
)

RECIPES = {"transformer": (200, 1e-3), "lstm": (100, 1e-3)}
RECIPE = 2  # checkpoints record it; 2: SASRec masks padding (earlier SASRec checkpoints would not reproduce)


class RecommendationTask:
    """``run`` trains and evaluates; ``evaluate`` reloads a checkpoint from the weight memory."""

    name = "recommendation"

    def run(self, *, path: Path, model: str, dataset: str, options: RunOptions) -> dict[str, Any]:
        opts = options
        seed_everything(opts.seed)
        data: Interactions = get("datasets", dataset).obj(quick=opts.quick, seed=opts.seed)
        spec = {"kind": "recommender", "items": data.items, "max_len": MAX_LEN, "quick": opts.quick,
                "hparams": opts.extra.get("hparams", {})}
        net = get("models", model).obj(spec).to(device())
        name = f"recommendation-{model}-{dataset}"
        users = _eval_users(data, opts.quick)
        cands = {s: data.candidates(users, s, opts.seed) for s in ("val", "test")}
        with feature_memory(path, net.feature_dim) as mem:
            recorder = StmRecorder(mem, name, lambda: _probe(net, data, users[:32]))
            fitted = self._fit(net, data, users, cands["val"], opts, model, recorder)
            plain = rank_metrics(model_scores(net, data, users, "test", cands["test"]))
            scope = {"agent": name, "session": uuid.uuid4().hex[:12]}
            remember_profiles(mem, net, data, scope)
            remember_interactions(mem, data, scope, "train")
            result: dict[str, Any] = {"task": self.name, "model": model, "dataset": dataset, "metrics": plain,
                                      "train_s": round(fitted.train_s, 2), "epochs": fitted.epochs,
                                      "memory_path": str(path), "evaluated_users": len(users),
                                      "baselines": {"popularity": popularity(data, cands["test"])},
                                      "examples": {"count": len(data.train), "scope": scope}}
            weights = None
            if opts.memory:
                tuned = tune_weights(memory_parts(mem, scope, net, data, users, "val", cands["val"]))
                weights = tuned["weights"]
            # the validation items have now been seen: the graph records them before the test items
            remember_interactions(mem, data, scope, "val")
            if weights is not None:
                parts = memory_parts(mem, scope, net, data, users, "test", cands["test"])
                result["plain_metrics"] = plain
                result["metrics"] = rank_metrics(combine(parts, weights))
                result["memory_mode"] = {"kind": "stm-session+ltm-profile+ltm-graph", **tuned,
                                         "gain": {k: result["metrics"][k] - plain[k] for k in plain}}
            meta = {"task": self.name, "model": model, "dataset": dataset, "spec": spec, "recipe": RECIPE,
                    "seed": opts.seed, "quick": opts.quick, "metrics": result["metrics"], "plain_metrics": plain,
                    "weights": weights, "scope": scope, "history": fitted.history}
            version = save_checkpoint(mem, name, net, meta)
            result["weights"] = {"name": name, "version": version}
            recorder.record("inference", version, result["metrics"])
            if opts.compress:
                result["compression"] = self._compress(mem, name, version, net, data, users, cands["test"], opts)
        return result

    def _fit(self, net: torch.nn.Module, data: Interactions, users: list[int], val_cands: np.ndarray,
             opts: RunOptions, model: str, recorder: StmRecorder | None) -> Any:
        epochs, lr = RECIPES.get(model, (50, 1e-3))
        epochs = opts.epochs or (3 if opts.quick else epochs)
        bs = opts.batch_size or 128
        train_users = trainable_users(data)
        gen = torch.Generator().manual_seed(opts.seed)
        per_batch = positions_per_batch(train_users, data, bs)
        negatives = int(opts.extra.get("negatives", NEGATIVES))
        if negatives < 1:
            raise InvalidInputError(f"--set negatives must be a positive count, not {negatives}")
        return fit(net, lambda e: length_batches(train_users, data, bs, opts.seed * 1000 + e),
                   lambda m, u: train_loss(m, data, u, gen, per_batch, negatives),
                   lambda: rank_metrics(model_scores(net, data, users, "val", val_cands))["ndcg@10"],
                   opts, epochs=epochs, lr=opts.lr or (5e-3 if opts.quick else lr), recorder=recorder,
                   warmup_steps=100, patience=10, desc=f"{model}/{data.name}")

    def _compress(self, mem: Memory, name: str, version: int, net: torch.nn.Module, data: Interactions,
                  users: list[int], cands: np.ndarray, opts: RunOptions) -> dict[str, Any]:
        sample = left_pad([data.history(u, "test") for u in users[:256]])

        def finetune(m: torch.nn.Module) -> None:
            tune = RunOptions(**{**opts.to_dict(), "epochs": 1, "patience": 1})
            self._fit(m, data, users, cands, tune, "lora", None)

        def save(state: dict[str, Any], metric: float) -> int:
            return mem.weights.save(f"{name}.lora", state, {"base": name, "base_version": version, "ndcg@10": metric})

        def evaluate(m: torch.nn.Module) -> float:
            return rank_metrics(model_scores(m, data, users, "test", cands))["ndcg@10"]

        return compress.report(net, evaluate, lambda m: m(sample), finetune, save)

    def evaluate(self, *, path: Path, model: str, dataset: str, options: RunOptions,
                 version: int | None = None) -> dict[str, Any]:
        """Rebuild the model from the weight memory and rank the same test candidates again."""
        name = f"recommendation-{model}-{dataset}"
        with Memory(path, read_only=True, ann_threshold=10**8) as mem:
            state, meta, version = load_checkpoint(mem, name, version)
            net = get("models", model).obj(meta["spec"])
            if getattr(net, "pad_invariant", False) and meta.get("recipe", 1) < RECIPE:
                raise InvalidInputError(
                    f"checkpoint {name} v{version} was saved by an earlier SASRec that attended to padding; "
                    "the model now masks it, so the checkpoint would not reproduce its figures: train it again")
            data: Interactions = get("datasets", dataset).obj(quick=meta["quick"], seed=meta["seed"])
            net.load_state_dict(state)
            net.to(device()).eval()
            users = _eval_users(data, meta["quick"])
            cands = data.candidates(users, "test", meta["seed"])
            plain = rank_metrics(model_scores(net, data, users, "test", cands))
            result = {"task": self.name, "model": model, "dataset": dataset, "metrics": plain,
                      "weights": {"name": name, "version": version}}
            w = meta.get("weights")
            if w is not None and "alpha" in w:  # saved before the graph evidence
                w = {"profile": w["alpha"], "session": w["beta"], "graph": 0.0}
            if w is not None:
                parts = memory_parts(mem, meta["scope"], net, data, users, "test", cands)
                result["plain_metrics"] = plain
                result["metrics"] = rank_metrics(combine(parts, w))
        return result


def _eval_users(data: Interactions, quick: bool) -> list[int]:
    users = data.evaluated()
    return users[:300] if quick else users


def _probe(net: torch.nn.Module, data: Interactions, users: list[int]) -> tuple[dict[str, Any], np.ndarray]:
    """Activations of every leaf module on a few users' sequences, and their mean last state."""
    was_training = net.training
    net.eval()
    seq = left_pad([data.history(u, "val") for u in users]).to(compress.model_device(net))
    with torch.inference_mode(), capture(net) as acts:
        vec = net(seq)[:, -1].float().mean(0).cpu().numpy()
    net.train(was_training)
    return dict(acts), vec
