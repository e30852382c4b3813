"""Consolidation: move items from STM into long-term memory.

For each item, in the order remembered: find its nearest long-term neighbour in the same scope (an
earlier item of the same statement, :mod:`agentmem.statement`, first); merge it there when it is
the same statement or the similarity passes ``merge_threshold``, and the ``should_merge`` hook
agrees (the built-in agrees only for the same statement with the same metadata and time: a merge
never loses what was said, and the merged item stays readable by its id); otherwise score its
importance (``score_item``), promote it to the LTM tier and extract facts (``extract_facts``).
The result is a :class:`ConsolidationPlan`; nothing is written here. The owning ``Memory`` hands it
to :meth:`agentmem.ltm.long_term.LongTermMemory.apply`: promotions, merges and facts commit in one
journal transaction, and the vector cache and graph are updated with it (they are rebuildable caches).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from agentmem.plugins import hook, loop_caller
from agentmem.scope import key as scope_key
from agentmem.statement import normal_form, same_statement
from agentmem.stm import STMEntry
from agentmem.types import Fact, Item

if TYPE_CHECKING:
    from agentmem.config import Config
    from agentmem.ltm.long_term import LongTermMemory
    from agentmem.stm import ShortTermMemory


@dataclass
class ConsolidationReport:
    promoted: list[int] = field(default_factory=list)
    merged: dict[int, int] = field(default_factory=dict)  # merged id -> canonical id
    facts: int = 0
    forgotten: list[int] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class ConsolidationPlan:
    """What one consolidation changes, decided before anything is written (see
    :func:`agentmem.consolidation.plan`): items promoted to LTM (in STM order) with their embeddings
    row for row and importance, duplicates folded into a canonical id with their similarity, and facts
    with the scope they belong to."""

    promote: list[Item]
    vectors: np.ndarray
    importance: dict[int, float]
    merges: list[tuple[Item, int, float]]
    facts: list[tuple[Fact, dict[str, str]]]

    def consumed(self) -> list[int]:
        """The ids that leave short-term memory once the plan is applied."""
        return [i.id for i in self.promote] + [d.id for d, _, _ in self.merges]



def plan(stm: ShortTermMemory, ltm: LongTermMemory, cfg: Config) -> ConsolidationPlan | None:
    """Decide what consolidating everything in ``stm`` does (None when it is empty), calling the
    ``should_merge``, ``score_item`` and ``extract_facts`` hooks item by item. Reads ``ltm``, writes
    nothing. Caller holds the memory's lock."""
    entries = stm.entries()
    if not entries:
        return None
    h = hook()
    score_item, extract_facts = loop_caller("score_item"), loop_caller("extract_facts")
    now = time.time()
    embs = stm.embeddings()  # (n, dim), rows in STM order
    merges: list[tuple[Item, int, float]] = []
    promote: list[Item] = []
    promoted_rows: list[int] = []
    importance: dict[int, float] = {}
    facts: list[tuple[Fact, dict[str, str]]] = []
    keys = [scope_key(e.item.scope) for e in entries]
    batch = _Batch(entries, embs, keys) if cfg.dedup else None
    ltm_best = _ltm_neighbours(ltm, cfg.merge_threshold, entries, embs, keys) if cfg.dedup else {}
    for row, entry in enumerate(entries):
        item = entry.item
        sim = 0.0
        if batch is not None:
            target, sim = batch.nearest(row, ltm_best.get(item.id))
            # every merge is the should_merge hook's decision, an identical text's too: "I love it!"
            # said by Bob is not Alice's, and "went to the gym" on four dates is four events
            if target is not None and (sim >= cfg.merge_threshold or same_statement(target.text, item.text)) \
                    and h.should_merge(item=item, existing=target, similarity=sim):
                merges.append((item, target.id, sim))
                continue
            batch.keep(row)
        novelty = float(1.0 - max(sim, 0.0))
        importance[item.id] = float(score_item(item=item, novelty=novelty, now=now) or 0.0)
        promote.append(item)
        promoted_rows.append(row)
        for result in extract_facts(item=item):
            facts.extend((f, item.scope) for f in result or [])
    return ConsolidationPlan(promote, embs[promoted_rows], importance, merges, facts)


class _Batch:
    """Nearest earlier-kept item of the same scope within one consolidation batch, vectorised.

    Each row's most similar *earlier* row of its scope comes from one matrix product per scope, up
    front. That answer is exact whenever the earlier row was kept; only when it was merged away are
    the row's kept predecessors scanned again (rare: merges are the exception)."""

    def __init__(self, entries: list[STMEntry], embs: np.ndarray,
                 keys: list[tuple[str | None, ...]] | None = None) -> None:
        self.entries = entries
        self.embs = embs
        self.keys = keys if keys is not None else [scope_key(e.item.scope) for e in entries]  # per entry
        self.kept_scopes: set[tuple[str | None, ...]] = set()  # scopes with a kept row
        self.texts: dict[tuple[tuple[str | None, ...], str], int] = {}  # (scope, statement) -> kept row
        self.is_kept = np.zeros(len(entries), dtype=bool)
        best_row = np.full(len(entries), -1, dtype=np.int64)
        best_sim = np.zeros(len(entries), dtype=np.float32)
        groups: dict[tuple[str | None, ...], list[int]] = {}
        for row, key in enumerate(self.keys):
            groups.setdefault(key, []).append(row)
        self.scope_ids = np.empty(len(entries), dtype=np.int64)  # a number per scope key
        for number, rows in enumerate(groups.values()):
            self.scope_ids[rows] = number
        for rows in groups.values():
            r = np.asarray(rows, dtype=np.int64)
            for start in range(1, len(r), 1024):  # blocks bound the (block, rows) matrix
                block = r[start:start + 1024]
                sims = embs[block] @ embs[r[: start + len(block)]].T  # (block, earlier and block)
                sims[np.arange(len(block))[:, None] + start <= np.arange(sims.shape[1])[None, :]] = -np.inf
                j = sims.argmax(axis=1)
                best_row[block] = r[j]
                best_sim[block] = sims[np.arange(len(block)), j]
        # row -> (its most similar earlier row of its scope, that cosine), as Python numbers for the
        # per-row loop
        self.best = list(zip(best_row.tolist(), best_sim.tolist(), strict=True))

    def nearest(self, row: int, ltm: tuple[Item | None, float] | None) -> tuple[Item | None, float]:
        item = self.entries[row].item
        key = self.keys[row]
        same_text = self.texts.get((key, normal_form(item.text)))
        if same_text is not None:
            return self.entries[same_text].item, 1.0
        best, best_sim = ltm if ltm is not None else (None, -1.0)
        if best is not None and same_statement(best.text, item.text):
            return best, 1.0
        j, sim = self.best[row]
        if j < 0:
            return best, best_sim
        if self.is_kept[j]:
            candidate = j
        else:  # the most similar earlier row was merged away: the best kept one instead
            if key not in self.kept_scopes:
                return best, best_sim
            # the earlier rows are a contiguous block (no gather); rows of other scopes or not kept
            # are masked out
            sims = self.embs[:row] @ self.embs[row]
            sims[~(self.is_kept[:row] & (self.scope_ids[:row] == self.scope_ids[row]))] = -np.inf
            candidate = int(np.argmax(sims))
            sim = float(sims[candidate])
        if sim > best_sim:
            best, best_sim = self.entries[candidate].item, sim
        return best, best_sim

    def keep(self, row: int) -> None:
        item = self.entries[row].item
        key = self.keys[row]
        self.kept_scopes.add(key)
        self.texts.setdefault((key, normal_form(item.text)), row)
        self.is_kept[row] = True


def _ltm_neighbours(ltm: LongTermMemory, threshold: float, entries: list[STMEntry], embs: np.ndarray,
                    keys: list[tuple[str | None, ...]]) -> dict[int, tuple[Item | None, float]]:
    """For each STM entry, its nearest long-term item in the same scope (batched per scope), with the
    same statement in the same scope taking precedence. The item is None when its similarity is
    below ``merge_threshold`` (it cannot be merged into; only the similarity matters)."""
    if len(ltm.vector) == 0:
        return {}
    groups: dict[tuple[str | None, ...], list[int]] = {}
    for row, key in enumerate(keys):
        groups.setdefault(key, []).append(row)
    best: dict[int, tuple[int, float]] = {}
    for rows in groups.values():
        scope = entries[rows[0]].item.scope
        results = ltm.vector.search_batch(embs[rows], 1, ltm.vector.mask(scope), ef_search=16)
        for row, hits in zip(rows, results, strict=True):
            if hits:
                best[entries[row].item.id] = hits[0]
    for item_id, canonical in ltm.journal.same_text_in_ltm([e.item for e in entries]).items():
        best[item_id] = (canonical, 1.0)
    # only a neighbour close enough to merge is read back; for the rest the similarity (novelty) will do
    found = ltm.journal.get_items(list({i for i, s in best.values() if s >= threshold}))
    return {k: (found.get(i), s) for k, (i, s) in best.items() if s < threshold or i in found}
