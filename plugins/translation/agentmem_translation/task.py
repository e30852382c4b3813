"""The translation task's pieces: train any seq2seq model, decode greedily, score sacreBLEU, and compare with
decoding helped by the translation memory.

A model for this task is built from ``{"kind": "seq2seq", "src_vocab": V1, "tgt_vocab": V2, "pad": 0,
"max_len": L, "quick": bool}`` and provides ``encode(src) -> enc`` (a tuple of batch-first tensors),
``decode(tgt_in, enc) -> (B, T, d)``, ``generator`` (d -> V2 logits), ``pool(enc) -> (B, d)`` and
``feature_dim``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from agentmem import compress
from agentmem.memory import Memory
from agentmem.plugins import get
from agentmem.training import autocast
from agentmem_translation import tm
from agentmem_translation.data import BOS, EOS, PAD, Split, TranslationData, detokenize

RECIPES = {"transformer": (30, 5e-4), "lstm": (20, 1e-3)}
LAMBDAS = (0.0, 0.1, 0.2, 0.3)
TAUS = (0.05, 0.1)
K_PAIRS = 8
MAX_LEN = 100


def length_batches(split: Split, size: int, seed: int | None) -> list[np.ndarray]:
    """Batches of similar source length (less padding); shuffled batch order when ``seed`` is given."""
    order = np.argsort([len(s) for s in split.src_ids], kind="stable")
    if seed is not None:  # shuffle within coarse length buckets so batches differ between epochs
        rng = np.random.default_rng(seed)
        order = np.concatenate([rng.permutation(c) for c in np.array_split(order, max(1, len(order) // (size * 8)))])
    chunks = [order[i:i + size] for i in range(0, len(order), size)]
    if seed is not None:
        np.random.default_rng(seed + 1).shuffle(chunks)
    return chunks


def nll(net: torch.nn.Module, split: Split, idx: np.ndarray, dev: Any, smoothing: float) -> torch.Tensor:
    src = tm.pad_batch([split.src_ids[i][:MAX_LEN] for i in idx], dev)
    tgt = tm.pad_batch([split.tgt_ids[i][:MAX_LEN] for i in idx], dev)
    with autocast(dev):
        logits = net(src, tgt[:, :-1])
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), tgt[:, 1:].reshape(-1),
                           ignore_index=PAD, label_smoothing=smoothing)


def val_loss(net: torch.nn.Module, split: Split, dev: Any) -> float:
    """Token-weighted mean cross-entropy on a split (no smoothing)."""
    total, tokens = 0.0, 0
    with torch.inference_mode():
        for idx in length_batches(split, 256, None):
            n = sum(len(split.tgt_ids[i]) - 1 for i in idx)
            total += float(nll(net, split, idx, dev, 0.0)) * n
            tokens += n
    return total / max(tokens, 1)


def greedy(net: torch.nn.Module, src: torch.Tensor, store: tm.Datastore | None, lam: float, tau: float
           ) -> list[list[int]]:
    """Greedy decoding of a batch; with a datastore, p = (1 - lam) p_model + lam p_kNN at every step."""
    enc = net.encode(src)
    ys = torch.full((src.shape[0], 1), BOS, dtype=torch.long, device=src.device)
    done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
    for _ in range(min(MAX_LEN, src.shape[1] + 10)):
        h = net.decode(ys, enc)[:, -1]  # (B, d)
        p = torch.softmax(net.generator(h).float(), -1)  # (B, V)
        if store is not None and lam > 0:
            p = (1 - lam) * p + lam * store.distribution(h, p.shape[-1], tau)
        nxt = p.argmax(-1).masked_fill(done, PAD)
        ys = torch.cat([ys, nxt[:, None]], dim=1)
        done |= nxt == EOS
        if bool(done.all()):
            break
    return ys[:, 1:].tolist()


def translate(net: torch.nn.Module, data: TranslationData, split: Split, *, stores: list[tm.Datastore] | None = None,
              lam: float = 0.0, tau: float = 0.1, bs: int = 128) -> list[str]:
    """Detokenised translations of every source sentence of ``split`` (in order)."""
    dev = compress.model_device(net)
    out: list[str] = [""] * len(split.src_ids)
    with torch.inference_mode(), autocast(dev):
        for b, idx in enumerate(length_batches(split, bs, None)):
            src = tm.pad_batch([split.src_ids[i][:MAX_LEN] for i in idx], dev)
            store = stores[b] if stores is not None else None
            for i, ids in zip(idx, greedy(net, src, store, lam, tau), strict=True):
                out[i] = detokenize(data.tgt_vocab.decode(ids))
    return out


def bleu(hyps: list[str], refs: list[str]) -> float:
    import sacrebleu

    return float(sacrebleu.corpus_bleu(hyps, [refs]).score)


def datastores(mem: Memory, scope: dict[str, str], net: torch.nn.Module, data: TranslationData, split: Split,
               bs: int = 128) -> list[tm.Datastore]:
    """One datastore per decoding batch (same batching as :func:`translate`)."""
    dev = compress.model_device(net)
    pairs = tm.recall_for(mem, scope, net, data, split, dev, K_PAIRS)
    with autocast(dev):
        return [tm.build_datastore(net, data, [pairs[i] for i in idx], dev)
                for idx in length_batches(split, bs, None)]


def tune_memory(mem: Memory, scope: dict[str, str], net: torch.nn.Module, data: TranslationData,
                quick: bool = False) -> dict[str, float]:
    """Choose the interpolation weight and temperature by BLEU on the validation split (a two-point
    grid in quick mode)."""
    stores = datastores(mem, scope, net, data, data.val)
    plain = bleu(translate(net, data, data.val), data.val.tgt)
    best = {"lambda": 0.0, "tau": TAUS[0], "val_plain": plain, "val_memory": plain}
    for tau in TAUS[-1:] if quick else TAUS:
        for lam in (0.3,) if quick else LAMBDAS[1:]:
            score = bleu(translate(net, data, data.val, stores=stores, lam=lam, tau=tau), data.val.tgt)
            if score > best["val_memory"]:
                best.update({"lambda": lam, "tau": tau, "val_memory": score})
    return best


def memory_bleu(mem: Memory, scope: dict[str, str], net: torch.nn.Module, data: TranslationData,
                params: dict[str, float]) -> float:
    stores = datastores(mem, scope, net, data, data.test) if params["lambda"] > 0 else None
    hyps = translate(net, data, data.test, stores=stores, lam=params["lambda"], tau=params["tau"])
    return bleu(hyps, data.test.tgt)


def build(model: str, data: TranslationData, quick: bool, hparams: dict[str, Any] | None = None
          ) -> tuple[torch.nn.Module, dict[str, Any]]:
    spec = {"kind": "seq2seq", "src_vocab": len(data.src_vocab), "tgt_vocab": len(data.tgt_vocab), "pad": PAD,
            "max_len": MAX_LEN + 2, "quick": quick, "hparams": hparams or {}}
    return get("models", model).obj(spec), spec
