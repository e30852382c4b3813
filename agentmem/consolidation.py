"""Consolidation: move items from STM into long-term memory.

For each item, in the order remembered: find its nearest long-term neighbour in the same scope;
merge it there when the text is identical or the similarity passes ``merge_threshold`` and the
``should_merge`` hook agrees; otherwise score its importance (``score_item``), promote it to the LTM
tier and extract facts (``extract_facts``). Promotions, merges and facts commit in one journal
transaction; the vector cache and graph are updated after the commit (they are rebuildable caches).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from agentmem.plugins import hook
from agentmem.types import SCOPE_KEYS, Fact, Item

if TYPE_CHECKING:
    from agentmem.memory import Memory


@dataclass
class ConsolidationReport:
    promoted: list[int] = field(default_factory=list)
    merged: dict[int, int] = field(default_factory=dict)  # merged id -> canonical id
    facts: int = 0
    forgotten: list[int] = field(default_factory=list)
    seconds: float = 0.0


def _scope_key(scope: dict[str, str]) -> tuple[str | None, ...]:
    return tuple(scope.get(k) for k in SCOPE_KEYS)


def consolidate(memory: Memory) -> ConsolidationReport:
    """Consolidate everything in ``memory.stm``. Caller holds the memory's lock."""
    start = time.perf_counter()
    report = ConsolidationReport()
    entries = memory.stm.entries()
    if not entries:
        return report
    h = hook()
    cfg = memory.config
    now = time.time()
    embs = memory.stm.embeddings()  # (n, dim), rows in STM order
    kept: dict[tuple[str | None, ...], list[tuple[Item, np.ndarray]]] = {}  # per scope, this batch
    merges: list[tuple[Item, int, float]] = []
    promote: list[Item] = []
    importance: dict[int, float] = {}
    facts: list[tuple[Fact, dict[str, str]]] = []
    ltm_best = _ltm_neighbours(memory, entries, embs) if cfg.dedup else {}
    for row, entry in enumerate(entries):
        item, vec = entry.item, embs[row]
        target, sim = None, 0.0
        if cfg.dedup:
            target, sim = _nearest(item, vec, kept.get(_scope_key(item.scope), []), ltm_best.get(item.id))
            if target is not None and target.id != item.id and (
                    target.text == item.text or
                    (sim >= cfg.merge_threshold and h.should_merge(item=item, existing=target, similarity=sim))):
                merges.append((item, target.id, sim))
                continue
        novelty = float(1.0 - max(sim, 0.0))
        importance[item.id] = float(h.score_item(item=item, novelty=novelty, now=now) or 0.0)
        promote.append(item)
        kept.setdefault(_scope_key(item.scope), []).append((item, vec))
        for result in h.extract_facts(item=item):
            facts.extend((f, item.scope) for f in result or [])
    memory._apply_consolidation(promote, importance, merges, facts)
    report.promoted = [i.id for i in promote]
    report.merged = {dup.id: canon for dup, canon, _ in merges}
    report.facts = len(facts)
    report.forgotten = memory._apply_forget_policy()
    report.seconds = time.perf_counter() - start
    h.on_consolidate(memory=memory, items=promote)
    return report


def _ltm_neighbours(memory: Memory, entries: list, embs: np.ndarray) -> dict[int, tuple[Item, float]]:
    """For each STM entry, its nearest long-term item in the same scope (batched per scope), with an
    identical text in the same scope taking precedence."""
    groups: dict[tuple[str | None, ...], list[int]] = {}
    for row, entry in enumerate(entries):
        groups.setdefault(_scope_key(entry.item.scope), []).append(row)
    best: dict[int, tuple[int, float]] = {}
    for rows in groups.values():
        scope = entries[rows[0]].item.scope
        results = memory.vector.search_batch(embs[rows], 1, memory.vector.mask(scope))
        for row, hits in zip(rows, results, strict=True):
            if hits:
                best[entries[row].item.id] = hits[0]
    for item_id, canonical in memory.journal.same_text_in_ltm([e.item for e in entries]).items():
        best[item_id] = (canonical, 1.0)
    found = memory.journal.get_items(list({i for i, _ in best.values()}))
    return {k: (found[i], s) for k, (i, s) in best.items() if i in found}


def _nearest(item: Item, vec: np.ndarray, batch: list[tuple[Item, np.ndarray]],
             ltm: tuple[Item, float] | None) -> tuple[Item | None, float]:
    """The most similar item in LTM or earlier in this batch (same scope); identical text wins."""
    best, best_sim = ltm if ltm is not None else (None, -1.0)
    if best_sim >= 1.0 and best is not None and best.text == item.text:
        return best, 1.0
    for other, other_vec in batch:
        if other.text == item.text:
            return other, 1.0
        s = float(other_vec @ vec)
        if s > best_sim:
            best, best_sim = other, s
    return best, best_sim
