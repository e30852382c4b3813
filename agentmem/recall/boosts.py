"""What is added to the fused lists: plugin candidates, the time a query names, graph expansion and
the exact statement."""

from __future__ import annotations

import time

import numpy as np

from agentmem import timeexpr
from agentmem.recall.dense import fill_dense
from agentmem.recall.fusion import Evidence, Fuser
from agentmem.recall.lexical import lexical_list
from agentmem.recall.query import Context, Stores


def plugin_lists(q: Context, n: int) -> list[tuple[str, list[int]]]:
    """Ranked id lists from ``recall_candidates`` plugins (``q.candidates``), outside-scope ids
    dropped later."""
    out = []
    for name, ids in q.candidates(q.text, dict(q.scope), n):
        if q.allowed is not None:
            ids = [i for i in ids if i in q.allowed_set]
        out.append((name, [int(i) for i in ids][:n]))
    return out


class TimeSpan:
    """Membership in a time span (``id in span``), read from the vector cache's item times and the
    short-term items, so a span covering most of a large memory costs no id list."""

    def __init__(self, stores: Stores, lo: float, hi: float) -> None:
        self.stores, self.lo, self.hi = stores, lo, hi
        self.stm_times = {e.item.id: (e.item.created_at if e.item.event_time is None else e.item.event_time)
                          for e in stores.stm.entries()}

    def __contains__(self, item_id: object) -> bool:
        if not isinstance(item_id, int | np.integer):
            return False
        i = int(item_id)
        if i in self.stores.vector:
            t = self.stores.vector.time_of(i)
        elif i in self.stm_times:
            t = self.stm_times[i]
        else:
            return False
        return self.lo <= t <= self.hi


def time_window(q: Context, n: int, words: str, origin: dict[int, set[str]]) -> TimeSpan | None:
    """The span of time the query names (with slack), if any; the best items in scope whose event
    time lies in it, by dense and windowed-lexical evidence, join the candidates."""
    cfg = q.stores.config
    span = timeexpr.parse(q.text, time.time())
    if span is None:
        return None
    slack = cfg.time_slack_days * 86400.0
    lo = span[0] - slack if q.since is None else max(q.since, span[0] - slack)
    hi = span[1] + slack if q.until is None else min(q.until, span[1] + slack)
    inside = TimeSpan(q.stores, lo, hi)
    mask = q.stores.vector.mask(q.scope, q.allowed, lo, hi)
    found = [i for i, _ in q.stores.vector.search(q.vec, n, mask)] if mask is None or mask.any() else []
    found += [i for i in q.stm_scores if i in inside][:n]
    if q.width > 0 and cfg.weight_context > 0:
        found += lexical_list(q, "time", 0.0, words, True, lo, hi).top(n)
    for i in found:
        origin.setdefault(i, set()).add("time")
    return inside


def expand_by_graph(q: Context, lists: list[Evidence], ranked: list[tuple[str, list[int]]], scores: dict[int, float],
           origin: dict[int, set[str]], in_time: TimeSpan | None) -> None:
    """Graph expansion: items sharing a rare entity with the best hits gain ``graph_boost``."""
    cfg = q.stores.config
    seeds = sorted(scores, key=lambda i: -scores[i])[: cfg.graph_seeds]
    gains = q.stores.graph.expand(seeds, q.scope, cfg.graph_max_df)
    gains = {i: g for i, g in gains.items() if q.allowed is None or i in q.allowed_set}
    new = [i for i in gains if i not in scores]
    for i in new:
        origin.setdefault(i, set()).add("graph")
    fill_dense(q, lists[0], new)
    fuse = Fuser(lists, ranked, cfg.rrf_k, cfg.weight_graph)
    for i in new:
        scores[i] = fuse(i) + (cfg.time_boost if in_time is not None and i in in_time else 0.0)
    for i, gain in gains.items():
        scores[i] += cfg.graph_boost * gain


def boost_exact(q: Context, lists: list[Evidence], ranked: list[tuple[str, list[int]]], scores: dict[int, float],
           origin: dict[int, set[str]], in_time: TimeSpan | None) -> None:
    """Items of the scope stating exactly the query gain ``exact_boost`` (joining the candidates if
    they were not among them): one indexed lookup of the query's statement hash (8 bytes of SHA-256:
    the texts are not compared, a collision within one scope being as good as impossible)."""
    cfg, journal = q.stores.config, q.stores.journal
    ids = [i for i in journal.same_statement(q.text, q.scope, q.since, q.until, q.filters)
           if q.allowed is None or i in q.allowed_set]
    if not ids:
        return
    new = [i for i in ids if i not in scores]
    if new:
        fill_dense(q, lists[0], new)
        fuse = Fuser(lists, ranked, cfg.rrf_k, cfg.weight_graph)
        for i in new:
            scores[i] = fuse(i) + (cfg.time_boost if in_time is not None and i in in_time else 0.0)
    for i in ids:
        scores[i] += cfg.exact_boost
        origin.setdefault(i, set()).add("exact")
