"""The translation memory: past pairs in the vector memory, recalled per input, turned into a small
token-level datastore of decoder states (kNN-MT restricted to the recalled pairs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from agentmem.memory import Memory
from agentmem.training import unit
from agentmem_translation.data import PAD, Split, TranslationData, tokenize


def pad_batch(seqs: list[list[int]], device: Any) -> torch.Tensor:
    """Right-padded (B, max_len) tensor of id lists."""
    out = torch.full((len(seqs), max(len(s) for s in seqs)), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = torch.tensor(s)
    return out.to(device)


def pooled(net: torch.nn.Module, ids: list[list[int]], device: Any, bs: int = 256) -> np.ndarray:
    """The encoder's mean state of each source sentence: (N, d) float32."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(ids), bs):
            out.append(net.pool(net.encode(pad_batch(ids[i:i + bs], device))).float().cpu().numpy())
    return np.concatenate(out)


def remember_pairs(mem: Memory, net: torch.nn.Module, data: TranslationData, scope: dict[str, str],
                   device: Any) -> list[int]:
    """Every training pair: source sentence as text, target in metadata, pooled encoder state as vector."""
    vecs = unit(pooled(net, data.train.src_ids, device))
    metas = [{"target": t, "index": i, "split": "train"} for i, t in enumerate(data.train.tgt)]
    ids = mem.remember_many(data.train.src, metas, scope, embeddings=vecs, progress=False)
    mem.consolidate()
    return ids


@dataclass
class Datastore:
    """Per input sentence b: keys (B, N, d) unit decoder states, values (B, N) next-token ids, valid (B, N)."""

    keys: torch.Tensor
    values: torch.Tensor
    valid: torch.Tensor

    def distribution(self, h: torch.Tensor, vocab: int, tau: float) -> torch.Tensor:
        """p_kNN (B, V) for decoder states h (B, d): softmax of cosine / tau over the stored states."""
        sims = torch.einsum("bd,bnd->bn", torch.nn.functional.normalize(h.float(), dim=-1), self.keys)
        weights = torch.softmax((sims / tau).masked_fill(~self.valid, float("-inf")), dim=-1)
        weights = torch.nan_to_num(weights)  # inputs with no stored state get an all-zero row
        return torch.zeros(h.shape[0], vocab, device=h.device).scatter_add_(1, self.values, weights)


def recall_pairs(mem: Memory, scope: dict[str, str], queries: np.ndarray, k: int) -> list[list[tuple[str, str]]]:
    """For each query vector, the k most similar remembered (source, target) pairs."""
    hits = mem.search_vectors(unit(queries), k, scope)
    items = mem.get_many(sorted({i for row in hits for i, _ in row}))
    return [[(items[i].text, items[i].metadata["target"]) for i, _ in row if i in items] for row in hits]


def build_datastore(net: torch.nn.Module, data: TranslationData, pairs: list[list[tuple[str, str]]],
                    device: Any) -> Datastore:
    """Teacher-force the recalled pairs through the model; their decoder states become the keys."""
    flat = [p for row in pairs for p in row]
    k = max(len(row) for row in pairs)
    src = pad_batch([data.src_vocab.encode(tokenize(s)) for s, _ in flat], device)
    tgt = pad_batch([data.tgt_vocab.encode(tokenize(t)) for _, t in flat], device)
    with torch.inference_mode():
        hidden = net.decode(tgt[:, :-1], net.encode(src)).float()  # (B*k, T, d)
    b, t = len(pairs), hidden.shape[1]
    keys = torch.nn.functional.normalize(hidden, dim=-1).reshape(b, k * t, -1)
    values = tgt[:, 1:].reshape(b, k * t)
    return Datastore(keys, values, values != PAD)


def recall_for(mem: Memory, scope: dict[str, str], net: torch.nn.Module, data: TranslationData, split: Split,
               device: Any, k: int) -> list[list[tuple[str, str]]]:
    """Recalled pairs for every sentence of ``split`` (at least one each: the memory is never empty)."""
    return recall_pairs(mem, scope, pooled(net, split.src_ids, device), k)
