"""The recommendation task's pieces: length-bucketed batching, next-item cross-entropy training,
leave-one-out ranking metrics, and the memory-augmented mode's evidence: the STM session, the LTM
profile (vector memory) and random walks over the LTM interaction graph (knowledge graph).

A model for this task is built from ``{"kind": "recommender", "items": N, "max_len": L, "quick": bool}``
and provides ``forward(seq (B, L)) -> hidden (B, L, d)`` over left-padded item ids (0 = padding),
``item_emb`` (an ``nn.Embedding`` of N + 1 rows; score = hidden . item_emb[i]) and ``feature_dim``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from agentmem import compress
from agentmem.memory import Memory
from agentmem.stm import ShortTermMemory
from agentmem.training import autocast, unit
from agentmem.types import Fact, Item
from agentmem_recommendation.data import Interactions

MAX_LEN = 50
NEGATIVES = 2048  # shared uniform negatives per training batch; a smaller catalogue is used whole
SESSION = 3  # the most recent items that form the short-term session
INTERACTED = "interacted_with"  # the knowledge-graph relation from "user U" to "item I"
RECENT, RECENCY, POP_PENALTY = 20, 0.8, 0.5  # graph evidence: last items walked from, decay, beta
# a user's step weight is deg(u) ** -USER_DEGREE: 0.5 rather than the random walk's 1 was chosen on
# Games validation NDCG@10 (0.5865 vs 0.5847 with the 60-epoch SASRec; test not consulted)
USER_DEGREE = 0.5
MEMORY_PARTS = ("profile", "session", "graph")
WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 1.0, 2.0)


def left_pad(seqs: list[list[int]], length: int = MAX_LEN) -> torch.Tensor:
    """(B, length) tensor of the last ``length`` items of each sequence, left-padded with 0."""
    out = torch.zeros((len(seqs), length), dtype=torch.long)
    for row, s in enumerate(seqs):
        tail = s[-length:]
        if tail:
            out[row, length - len(tail):] = torch.tensor(tail)
    return out


def batch_length(net: torch.nn.Module, seqs: list[list[int]]) -> int:
    """Columns to pad a batch to: its longest sequence for a model whose states ignore padding
    (``pad_invariant``), else MAX_LEN."""
    if not getattr(net, "pad_invariant", False):
        return MAX_LEN
    return max(1, min(MAX_LEN, max((len(s) for s in seqs), default=1)))


def train_loss(net: torch.nn.Module, data: Interactions, users: np.ndarray, gen: torch.Generator,
               per_batch: float | None = None, negatives: int = NEGATIVES) -> torch.Tensor:
    """Next-item cross-entropy at every position, against ``negatives`` items drawn uniformly once
    per batch and shared by its positions (sampled softmax), or against the whole catalogue when it
    has no more items than that (full softmax). The loss is summed over positions and divided by
    ``per_batch`` (the average number of positions in a batch; default: this batch's), so that with
    length-bucketed batches every position weighs the same as in random batches."""
    dev = compress.model_device(net)
    seqs = [data.train[int(u)] for u in users]
    length = batch_length(net, [s[:-1] for s in seqs])
    inputs = left_pad([s[:-1] for s in seqs], length).to(dev)  # (B, L)
    targets = left_pad([s[1:] for s in seqs], length).to(dev)  # (B, L)
    mask = targets != 0
    with autocast(dev):
        h = net(inputs)[mask]  # (P, d): the positions that have a next item
        if data.items <= negatives:
            logits = (h @ net.item_emb.weight[1:].T).float()  # (P, items): item i in column i - 1
            labels = targets[mask] - 1
        else:
            negs = torch.randint(1, data.items + 1, (negatives,), generator=gen).to(dev)
            pos = (h * net.item_emb(targets[mask])).sum(-1, keepdim=True)  # (P, 1)
            logits = torch.cat([pos, h @ net.item_emb(negs).T], dim=-1).float()  # (P, 1 + negatives)
            labels = torch.zeros(len(logits), dtype=torch.long, device=dev)
    return F.cross_entropy(logits, labels, reduction="sum") / (per_batch or max(1, len(logits)))


def trainable_users(data: Interactions) -> np.ndarray:
    return np.array([u for u, s in data.train.items() if len(s) >= 2])


def positions_per_batch(users: np.ndarray, data: Interactions, size: int) -> float:
    """The average number of next-item positions (at most MAX_LEN per user) in a batch of ``size``."""
    return size * float(np.mean([min(len(data.train[int(u)]) - 1, MAX_LEN) for u in users]))


def length_batches(users: np.ndarray, data: Interactions, size: int, seed: int) -> list[np.ndarray]:
    """Batches of users with training sequences of similar length, in a seeded random order: a
    shuffle, a stable sort by length, consecutive slices, shuffled again. Most sequences are short
    (median 4 items on Games), so a pad-invariant model then runs on a few columns instead of MAX_LEN."""
    rng = np.random.default_rng(seed)
    shuffled = users[rng.permutation(len(users))]
    lengths = np.array([min(len(data.train[int(u)]), MAX_LEN + 1) for u in shuffled])
    ordered = shuffled[np.argsort(lengths, kind="stable")]
    out = [ordered[i:i + size] for i in range(0, len(ordered), size)]
    return [out[i] for i in rng.permutation(len(out))]


def last_states(net: torch.nn.Module, seqs: list[list[int]], bs: int = 1024) -> torch.Tensor:
    """The model's state after the last item of each sequence: (N, d). Sequences are run in chunks
    of similar length (a pad-invariant model then skips most of the padding)."""
    dev = compress.model_device(net)
    order = np.argsort([min(len(s), MAX_LEN) for s in seqs], kind="stable")
    out = torch.empty((len(seqs), net.feature_dim), device=dev)
    with torch.inference_mode(), autocast(dev):
        for i in range(0, len(seqs), bs):
            rows = order[i:i + bs]
            chunk = [seqs[r] for r in rows]
            out[torch.from_numpy(rows).to(dev)] = net(left_pad(chunk, batch_length(net, chunk)).to(dev))[:, -1].float()
    return out


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
    out = torch.zeros((len(users), mem.dim))
    for i, v in mem.embeddings(list(found)).items():
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


def remember_interactions(mem: Memory, data: Interactions, scope: dict[str, str], split: str) -> int:
    """Record user-item interactions as facts ``user U -interacted_with-> item I`` in the knowledge
    graph: every training interaction for ``split="train"``, each user's validation item for
    ``split="val"`` (what happened next, once the validation items have been scored). Returns the count."""
    if split == "train":
        pairs = [(u, i) for u, seq in data.train.items() for i in dict.fromkeys(seq)]
    elif split == "val":
        pairs = sorted(data.val.items())
    else:
        raise ValueError(f"split must be 'train' or 'val', not {split!r}")
    return mem.graph.add_facts([Fact(f"user {u}", INTERACTED, f"item {i}") for u, i in pairs], scope)


def interaction_walks(mem: Memory, scope: dict[str, str], items: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """The item-to-item step of a walk item -> user -> item over the interaction graph, and each
    item's degree: ``W[i, j] = sum over users u of both: 1/deg(i) * deg(u) ** -USER_DEGREE``,
    (items + 1)^2 (USER_DEGREE 1 would be the plain random walk)."""
    users: dict[str, int] = {}
    rows, cols = [], []
    for f in mem.graph.facts(relation=INTERACTED, scope=scope):
        rows.append(users.setdefault(f.subject, len(users)))
        cols.append(int(f.object.removeprefix("item ")))
    x = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(users), items + 1))
    x.data[:] = 1.0  # an interaction recorded twice counts once
    user_deg = np.asarray(x.sum(1)).ravel()
    item_deg = np.asarray(x.sum(0)).ravel()
    walk = sp.diags(1.0 / np.maximum(item_deg, 1)) @ x.T @ sp.diags(np.maximum(user_deg, 1) ** -USER_DEGREE) @ x
    walk = walk.tocsr().astype(np.float32)
    walk.setdiag(0)
    walk.eliminate_zeros()
    return walk, item_deg


def graph_scores(walk: sp.csr_matrix, item_deg: np.ndarray, data: Interactions, users: list[int], split: str,
                 cands: np.ndarray) -> torch.Tensor:
    """RP3beta evidence (Paudel et al., 2016) from the user's RECENT last items, newer ones weighted
    more (RECENCY per step back): walk probability to each candidate, divided by the candidate's
    degree ** POP_PENALTY, standardised per row. (B, 1 + negatives)."""
    out = np.zeros(cands.shape, np.float32)
    penalty = np.maximum(item_deg, 1.0) ** -POP_PENALTY
    for row, u in enumerate(users):
        recent = np.asarray(data.history(u, split)[-RECENT:])
        w = RECENCY ** np.arange(len(recent))[::-1]
        out[row] = (walk[recent][:, cands[row]].toarray() * w[:, None]).sum(0) * penalty[cands[row]]
    t = torch.from_numpy(out)
    return (t - t.mean(1, keepdim=True)) / (t.std(1, keepdim=True) + 1e-6)


def memory_parts(mem: Memory, scope: dict[str, str], net: torch.nn.Module, data: Interactions, users: list[int],
                 split: str, cands: np.ndarray) -> dict[str, torch.Tensor]:
    """The evidence for each candidate, (B, 1 + negatives) each: ``model`` (the network's score),
    ``profile`` (LTM profile affinity), ``session`` (STM session affinity) and ``graph`` (random walks
    over the interaction graph, on the model's scale)."""
    base = model_scores(net, data, users, split, cands).cpu()
    table = item_table(net).cpu()[torch.from_numpy(cands)]  # (B, C, d)
    norms = table.norm(dim=-1).mean()
    profile = torch.einsum("bd,bcd->bc", recall_profiles(mem, scope, users) * norms, table)
    session = torch.einsum("bd,bcd->bc", sessions(net, data, users, split).cpu(), table)
    walk, item_deg = interaction_walks(mem, scope, data.items)
    graph = graph_scores(walk, item_deg, data, users, split, cands) * base.std(1).mean()
    return {"model": base, "profile": profile, "session": session, "graph": graph}


def combine(parts: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    """The memory-augmented score: the model's plus each weighted memory part."""
    return parts["model"] + sum(weights[k] * parts[k] for k in MEMORY_PARTS)


def tune_weights(parts: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Choose each memory part's weight from WEIGHTS by NDCG@10 on the validation items (coordinate
    ascent, three sweeps; 0 is allowed, so the memory mode is never worse on validation).
    ``val_plain`` / ``val_memory`` are validation NDCG@10 without / with them."""
    plain = rank_metrics(parts["model"])["ndcg@10"]
    weights = {k: 0.0 for k in MEMORY_PARTS}
    best = plain
    for _ in range(3):
        for k in MEMORY_PARTS:
            for w in WEIGHTS:
                trial = {**weights, k: w}
                score = rank_metrics(combine(parts, trial))["ndcg@10"]
                if score > best:
                    best, weights = score, trial
    return {"weights": weights, "val_plain": plain, "val_memory": best}
