"""The recommendation task's pieces: batching, sampled-softmax training, leave-one-out ranking metrics,
and the STM session / LTM profile scores of the memory-augmented mode.

A model for this task is built from ``{"kind": "recommender", "items": N, "max_len": L, "quick": bool}``
and provides ``forward(seq (B, L)) -> hidden (B, L, d)`` over left-padded item ids (0 = padding),
``item_emb`` (an ``nn.Embedding`` of N + 1 rows; score = hidden . item_emb[i]) and ``feature_dim``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from agentmem import compress
from agentmem.memory import Memory
from agentmem.stm import ShortTermMemory
from agentmem.training import autocast, unit
from agentmem.types import Item
from agentmem_recommendation.data import Interactions

MAX_LEN = 50
N_NEG = 256  # shared negatives per training batch (sampled softmax)
SESSION = 3  # the most recent items that form the short-term session
WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0)


def left_pad(seqs: list[list[int]], length: int = MAX_LEN) -> torch.Tensor:
    """(B, length) tensor of the last ``length`` items of each sequence, left-padded with 0."""
    out = torch.zeros((len(seqs), length), dtype=torch.long)
    for row, s in enumerate(seqs):
        tail = s[-length:]
        if tail:
            out[row, length - len(tail):] = torch.tensor(tail)
    return out


def train_loss(net: torch.nn.Module, data: Interactions, users: np.ndarray, gen: torch.Generator) -> torch.Tensor:
    """Next-item sampled softmax: at every position the true next item against N_NEG shared uniform
    negatives."""
    dev = compress.model_device(net)
    seqs = [data.train[int(u)] for u in users]
    inputs = left_pad([s[:-1] for s in seqs]).to(dev)  # (B, L)
    targets = left_pad([s[1:] for s in seqs]).to(dev)  # (B, L)
    negs = torch.randint(1, data.items + 1, (N_NEG,), generator=gen).to(dev)
    with autocast(dev):
        h = net(inputs)  # (B, L, d)
        pos = (h * net.item_emb(targets)).sum(-1, keepdim=True)  # (B, L, 1)
        neg = h @ net.item_emb(negs).T  # (B, L, N_NEG)
        logits = torch.cat([pos, neg], dim=-1).float()
    mask = targets != 0
    return F.cross_entropy(logits[mask], torch.zeros(int(mask.sum()), dtype=torch.long, device=dev))


def trainable_users(data: Interactions) -> np.ndarray:
    return np.array([u for u, s in data.train.items() if len(s) >= 2])


def last_states(net: torch.nn.Module, seqs: list[list[int]], bs: int = 1024) -> torch.Tensor:
    """The model's state after the last item of each sequence: (N, d)."""
    dev = compress.model_device(net)
    out = []
    with torch.inference_mode(), autocast(dev):
        for i in range(0, len(seqs), bs):
            out.append(net(left_pad(seqs[i:i + bs]).to(dev))[:, -1].float())
    return torch.cat(out)


def item_table(net: torch.nn.Module) -> torch.Tensor:
    """The item embedding matrix (N + 1, d), float32, detached."""
    return net.item_emb.weight.detach().float()


def rank_metrics(scores: torch.Tensor) -> dict[str, float]:
    """HR@10 and NDCG@10 when column 0 holds the held-out item's score (B, 1 + negatives)."""
    rank = (scores[:, 1:] > scores[:, :1]).sum(1).float()
    hit = rank < 10
    return {"hr@10": float(hit.float().mean()),
            "ndcg@10": float((hit.float() / torch.log2(rank + 2.0)).mean())}


def model_scores(net: torch.nn.Module, data: Interactions, users: list[int], split: str,
                 cands: np.ndarray) -> torch.Tensor:
    h = last_states(net, [data.history(u, split) for u in users])  # (B, d)
    table = item_table(net)
    return torch.einsum("bd,bcd->bc", h, table[torch.from_numpy(cands).to(h.device)])


def popularity(data: Interactions, cands: np.ndarray) -> dict[str, float]:
    """The popularity baseline: candidates ranked by how often they occur in the training part."""
    counts = np.bincount(np.concatenate([np.asarray(s) for s in data.train.values()]), minlength=data.items + 1)
    return rank_metrics(torch.from_numpy(counts[cands].astype(np.float32)))


# --- memory: LTM profiles and STM sessions -----------------------------------------------------------


def remember_profiles(mem: Memory, net: torch.nn.Module, data: Interactions, scope: dict[str, str]) -> list[int]:
    """Each user's long-term profile (mean item embedding of their training history) into the vector
    memory, under the user's own scope."""
    table = item_table(net).cpu().numpy()
    ids = []
    for u, seq in data.train.items():
        vec = table[np.asarray(seq)].mean(0)
        ids.append(mem.remember(f"user {u}: long-term profile over {len(seq)} items",
                                {"user": u, "items": len(seq)}, {**scope, "user": str(u)}, embedding=unit(vec)))
    mem.consolidate()
    return ids


def recall_profiles(mem: Memory, scope: dict[str, str], users: list[int]) -> torch.Tensor:
    """The stored profile of each user (unit vectors, (B, d)); zeros for a user without one."""
    wanted = {str(u): row for row, u in enumerate(users)}
    found: dict[int, int] = {}
    for item in mem:
        if all(item.scope.get(k) == v for k, v in scope.items()) and item.scope.get("user") in wanted:
            found[item.id] = wanted[item.scope["user"]]
    ids, vecs, _ = mem.journal.vectors(list(found))
    out = torch.zeros((len(users), mem.dim))
    for i, v in zip(ids.tolist(), vecs, strict=True):
        out[found[i]] = torch.from_numpy(np.array(v))
    return out


def sessions(net: torch.nn.Module, data: Interactions, users: list[int], split: str) -> torch.Tensor:
    """Each user's short-term session: the last SESSION items, held in a short-term memory buffer
    (embeddings on the device), read back as a recency-weighted mean (B, d)."""
    table = item_table(net)
    stm = ShortTermMemory(table.shape[1], max_items=len(users) * SESSION + 1, max_bytes=1 << 40)
    rows, weights, items, vecs = [], [], [], []
    for row, u in enumerate(users):
        recent = data.history(u, split)[-SESSION:]
        for age, i in enumerate(reversed(recent)):
            items.append(Item(len(items) + 1, f"user {u} interacted with item {i}", {"item": i}, {"user": str(u)}, 0.0))
            vecs.append(i)
            rows.append(row)
            weights.append(0.5 ** age)
    stm.add(items, table[torch.tensor(vecs)].cpu().numpy())
    emb = torch.from_numpy(stm.embeddings())  # (n, d), in insertion order
    w = torch.tensor(weights)[:, None]
    out = torch.zeros((len(users), table.shape[1])).index_add_(0, torch.tensor(rows), emb * w)
    total = torch.zeros(len(users)).index_add_(0, torch.tensor(rows), w[:, 0])
    return out / total.clamp(min=1e-9)[:, None]


def memory_parts(mem: Memory, scope: dict[str, str], net: torch.nn.Module, data: Interactions, users: list[int],
                 split: str, cands: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(model score, LTM profile affinity, STM session affinity), each (B, 1 + negatives)."""
    base = model_scores(net, data, users, split, cands).cpu()
    table = item_table(net).cpu()[torch.from_numpy(cands)]  # (B, C, d)
    norms = table.norm(dim=-1).mean()
    profile = torch.einsum("bd,bcd->bc", recall_profiles(mem, scope, users) * norms, table)
    session = torch.einsum("bd,bcd->bc", sessions(net, data, users, split).cpu(), table)
    return base, profile, session


def tune_weights(parts: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> dict[str, Any]:
    """Choose the profile and session weights by NDCG@10 on the validation items
    (``val_plain`` / ``val_memory`` are validation NDCG@10 without / with them)."""
    base, profile, session = parts
    plain = rank_metrics(base)["ndcg@10"]
    best: dict[str, Any] = {"alpha": 0.0, "beta": 0.0, "val_plain": plain, "val_memory": plain}
    for a in WEIGHTS:
        for b in WEIGHTS:
            score = rank_metrics(base + a * profile + b * session)["ndcg@10"]
            if score > best["val_memory"]:
                best.update({"alpha": a, "beta": b, "val_memory": score})
    return best
