"""Lexical evidence: BM25 over items' texts, context windows or gram terms, STM included."""

from __future__ import annotations

import math

import numpy as np

from agentmem import scope as scopes
from agentmem.lexicon import Stats
from agentmem.ltm.fulltext import query_words
from agentmem.recall.fusion import Evidence
from agentmem.recall.query import LEXICAL_DEPTH, Context


def scope_size(q: Context) -> int:
    ltm = len(q.stores.vector) if q.mask is None else int(np.count_nonzero(q.mask))
    return max(1, ltm + len(q.stm_scores))


def lexical_list(q: Context, name: str, weight: float, words: str, in_windows: bool,
             since: float | None = None, until: float | None = None) -> Evidence:
    """BM25 evidence; the scope's distribution counts every unmatched item as scoring 0."""
    mem = q.stores
    budget = mem.config.lexical_budget
    if in_windows:  # a window holds about (2w + 1) items' words: keep the same cost bound
        budget = max(1, budget // (2 * q.width + 1))
    since = q.since if since is None else since
    until = q.until if until is None else until
    table = "grams_fts" if name == "grams" else "windows_fts" if in_windows else "items_fts"
    chosen = mem.journal.text.budget_words(query_words(words), budget, q.top_id) if table != "grams_fts" else \
        query_words(words)  # character pairs are rare: no budget
    rows = mem.journal.text.lexical(chosen, LEXICAL_DEPTH, q.scope, q.filters, since, until, table=table)
    rows = with_stm(q, rows, chosen, table, since, until)
    scores = dict(rows) if q.allowed is None else {i: s for i, s in rows if i in q.allowed_set}
    total = scope_size(q)
    s = np.fromiter(scores.values(), dtype=np.float64, count=len(scores))
    mean = float(s.sum()) / total
    std = math.sqrt(max(float((s * s).sum()) / total - mean * mean, 0.0))
    floor = float(s.min()) if len(rows) >= LEXICAL_DEPTH else 0.0
    # FTS5 clamps a term's IDF to 1e-6 when half the index or more has it (scores ~1e-6 in a small
    # scope): the floor only keeps a list whose scores are all equal from dividing by zero
    return Evidence(name, weight, scores, mean, max(std, 1e-12), floor, ordered=True)  # rows come best first


def with_stm(q: Context, rows: list[tuple[int, float]], words: list[str], table: str,
              since: float | None, until: float | None) -> list[tuple[int, float]]:
    """``rows`` (the full-text index's matches, best first) merged with the STM items' BM25 scores
    (:mod:`agentmem.lexicon`: STM items are indexed only when consolidated), best first."""
    mem = q.stores
    in_windows = table == "windows_fts"
    lexicon = mem.stm.grams if table == "grams_fts" else mem.stm.lexicon
    if lexicon is None or not len(lexicon) or not words or (in_windows and q.width <= 0):
        return rows
    journal = mem.journal
    n_rows, tokens = journal.text.fts_stats(table)
    stats = Stats(n_rows, tokens, lambda w: journal.text.doc_freq(w, q.top_id, table))

    def keep(item_id: int) -> bool:
        entry = mem.stm.get(item_id)
        if entry is None or not q.keep(entry.item):
            return False
        t = entry.item.created_at if entry.item.event_time is None else entry.item.event_time
        return not ((since is not None and t < since) or (until is not None and t > until))

    if in_windows:
        found = lexicon.scores(words, stats, keep, q.width, lambda key: journal.ltm_tail(key, q.width),
                               lambda key: scopes.contains_key(q.scope, key))
    else:
        found = lexicon.scores(words, stats, keep)
    if not found:
        return rows
    indexed = {i for i, _ in rows}  # a reader's STM may hold items the writer has consolidated since
    merged = rows + [(i, s) for i, s in found if i not in indexed]
    merged.sort(key=lambda x: -x[1])
    return merged[:LEXICAL_DEPTH]
