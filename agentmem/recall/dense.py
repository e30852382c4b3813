"""Dense evidence: cosines from the vector store and STM, with the filter probe."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from agentmem import scope as scopes
from agentmem.recall.fusion import Evidence
from agentmem.recall.query import STATS_SAMPLE, Context, Stores, item_matcher

PROBE = (5 / 4, 4)  # a filter is checked on these many times the candidates a list takes, in turn


def probe_filter(q: Context, n: int) -> list[tuple[int, float]] | None:
    """The scope's best vector matches that pass ``q.filters``, best first, when they answer the dense
    list exactly: at least ``n`` of the first ``PROBE[j] * n`` pass, or those were every item of the
    scope. None when the filter is too selective for them (the caller then lists the ids it allows).
    A broad filter is answered by the first, small probe; a middling one by the second. Checking a
    few dozen rows costs less than the lexical lists do; listing the ids a 99% filter allows read
    every row of the scope (133 ms per recall at 100k items in one scope)."""
    mem = q.stores
    mask = q.mask  # the scope and time bounds, no id list yet
    in_scope = len(mem.vector) if mask is None else int(np.count_nonzero(mask))
    for factor in PROBE:
        wanted = int(factor * n)
        found = mem.vector.search(q.vec, wanted, mask)
        passing = mem.journal.filters.passing([i for i, _ in found], q.filters or {})
        kept = [(i, s) for i, s in found if i in passing]
        if len(kept) >= n or in_scope <= wanted:  # enough, or every row of the scope seen
            return kept
        if len(kept) * PROBE[-1] < len(found):  # at this rate the last probe would not find n
            return None
    return None


def dense_list(q: Context, n: int, probe: list[tuple[int, float]] | None = None) -> Evidence:
    """Cosine evidence from the vector cache and STM (``probe``: the vector matches, already found
    by :func:`probe_filter`); stats from a sample of the whole scope."""
    mem = q.stores
    # the scope alone names its mask: the vector cache may then reuse the sample of a large scope
    key = None if q.allowed is not None or q.since is not None or q.until is not None else scopes.name(q.scope)
    if probe is None:
        found, ltm_sample = mem.vector.search_and_sample(q.vec, n, q.mask, STATS_SAMPLE, key)
    else:
        found, ltm_sample = probe[:n], mem.vector.sample_scores(q.vec, q.mask, STATS_SAMPLE, key)
    hits = dict(found)
    hits.update(sorted(q.stm_scores.items(), key=lambda x: -x[1])[:n])
    if len(mem.passages):
        for i, s in mem.passages.search(q.vec, n, q.scope, q.allowed, q.since, q.until).items():
            if i not in hits:  # its own cosine first: a passage counts if it is better
                hits[i] = q.stm_scores[i] if i in q.stm_scores else float(mem.vector.scores_of([i], q.vec)[0])
            hits[i] = max(hits[i], s)
    sample = np.concatenate([ltm_sample, np.fromiter(q.stm_scores.values(), dtype=np.float32)])
    mean, std = (float(sample.mean()), float(sample.std())) if len(sample) else (0.0, 1.0)
    return Evidence("vector", mem.config.weight_vector, hits, mean, max(std, 1e-6), mean)


def vectors_of(stores: Stores, ids: list[int]) -> np.ndarray:
    """Embeddings of ``ids`` from the vector cache or STM, shape (len(ids), dim); zeros if neither."""
    out = np.zeros((len(ids), stores.dim), dtype=np.float32)
    cached = [j for j, i in enumerate(ids) if i in stores.vector]
    if cached:
        out[cached] = stores.vector.vectors_of([ids[j] for j in cached])
    rest = [j for j, i in enumerate(ids) if i not in stores.vector and i in stores.stm]
    if rest:
        rows = {e.item.id: r for r, e in enumerate(stores.stm.entries())}
        out[rest] = stores.stm.embeddings()[[rows[ids[j]] for j in rest]]
    return out


def fill_dense(q: Context, dense: Evidence, ids: Iterable[int]) -> None:
    """Exact cosines for candidates the dense list did not return itself."""
    scores, stm = dense.scores, q.stm_scores
    missing = [i for i in ids if i not in scores]
    if not missing:
        return
    ltm = [i for i in missing if i not in stm]  # STM items in scope: their cosines are at hand
    scores.update((i, stm[i]) for i in missing if i in stm)
    if ltm:
        scores.update(zip(ltm, q.stores.vector.scores_of(ltm, q.vec).tolist(), strict=True))
    if len(q.stores.passages):
        for i, s in q.stores.passages.best_of(missing, q.vec).items():
            scores[i] = max(scores[i], s)


def nearest_vectors(stores: Stores, queries: np.ndarray, k: int, scope: dict[str, str],
                    filters: dict[str, Any] | None, since: float | None, until: float | None
                    ) -> list[list[tuple[int, float]]]:
    """For each row of ``queries`` (n, dim), the ``k`` items nearest by cosine inside ``scope`` (and
    filters, time bounds), long- and short-term alike, as (id, cosine) best first (ties: lower id)."""
    allowed = stores.journal.filters.ids(scope, filters, since, until) if filters else None
    found = stores.vector.search_batch(queries, k, stores.vector.mask(scope, allowed, since, until))
    if not len(stores.stm):
        return found
    keep = item_matcher(scope, filters, since, until)
    return [sorted(row + stores.stm.search(v, k, keep), key=lambda h: (-h[1], h[0]))[:k]
            for row, v in zip(found, queries, strict=True)]
