"""The recall pipeline: every evidence list, fused, boosted and ordered."""

from __future__ import annotations

from agentmem.grams import gram_text
from agentmem.recall.boosts import boost_exact, expand_by_graph, plugin_lists, time_window
from agentmem.recall.dense import dense_list, fill_dense, probe_filter, vectors_of
from agentmem.recall.fusion import Fuser, mmr
from agentmem.recall.lexical import lexical_list
from agentmem.recall.query import Context, item_matcher, lexical_text


def search(q: Context) -> list[tuple[int, float, set[str]]]:
    """Fused recall: every candidate as (id, score, names of the evidence that found it), best first.
    Ids from plugins may lie outside the scope: the caller checks each item it keeps (``q.keep``)."""
    cfg, mem = q.stores.config, q.stores
    n = max(cfg.candidates, 2 * q.k)
    # Time bounds need no id list: the vector cache, the passages and the full-text queries bound
    # item times themselves, and every hit is checked (q.keep); listing the ids of a time window read
    # every row of the scope. A metadata filter first checks the scope's best vector matches
    # (probe_filter); only a filter too selective for them lists the ids it allows, through its value index.
    q.allowed, probe = None, None
    q.mask = mem.vector.mask(q.scope, None, q.since, q.until)
    if q.filters:
        probe = probe_filter(q, n)
        if probe is None:
            q.allowed = mem.journal.filters.ids(q.scope, q.filters, q.since, q.until)
            q.mask = mem.vector.mask(q.scope, q.allowed, q.since, q.until)
    q.allowed_set = set() if q.allowed is None else set(q.allowed.tolist())
    q.width = mem.journal.window_width()
    q.top_id = mem.journal.max_item_id()
    q.keep = item_matcher(q.scope, q.filters, q.since, q.until)
    q.stm_scores = dict(mem.stm.search(q.vec, len(mem.stm), q.keep))
    lists = [dense_list(q, n, probe)]
    words = lexical_text(q.text)
    for name, weight, in_windows in (("lexical", cfg.weight_lexical, False),
                                     ("context", cfg.weight_context, True)):
        if weight > 0:
            lists.append(lexical_list(q, name, weight, words, in_windows))
    query_grams = gram_text(q.text)
    if query_grams and cfg.weight_grams > 0:
        lists.append(lexical_list(q, "grams", cfg.weight_grams, query_grams, False))
    ranked = plugin_lists(q, n)
    origin: dict[int, set[str]] = {}  # candidate -> lists ranking it in their first k, above average
    for ev in lists:
        for rank, i in enumerate(ev.top(n)):
            names = origin.setdefault(i, set())
            if rank < q.k and ev.z(i) > 0:
                names.add(ev.name)
    for name, ids in ranked:
        for i in ids:
            origin.setdefault(i, set()).add(name)
    in_time = time_window(q, n, words, origin) if cfg.time_boost > 0 else None
    fill_dense(q, lists[0], origin)
    scores = Fuser(lists, ranked, cfg.rrf_k, cfg.weight_graph).many(list(origin))
    if in_time is not None:
        for i in scores:
            if i in in_time:
                scores[i] += cfg.time_boost
    if cfg.graph_boost > 0:
        expand_by_graph(q, lists, ranked, scores, origin, in_time)
    if cfg.exact_boost > 0:
        boost_exact(q, lists, ranked, scores, origin, in_time)
    q.cosines = lists[0].scores
    order = sorted(scores, key=lambda i: (-scores[i], i))
    if cfg.diversity > 0:
        order = mmr(order[: max(3 * q.k, 50)], scores, vectors_of(q.stores, order[: max(3 * q.k, 50)]),
                    cfg.diversity, q.k)
    return [(i, scores[i], origin[i]) for i in order]
