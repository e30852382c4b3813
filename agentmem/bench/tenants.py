"""The tenants workload of ``agentmem bench throughput``: recall the way agent applications ask.

The size-N corpus (same texts and vectors as the rest of the bench) is spread round-robin over U
users, for U in :func:`spreads` (1, 100 and 10,000 at 1M; scaled down for smaller N). Item i has
metadata ``{"tag": "rare"}`` for one item in a hundred, else ``{"tag": "common"}``, and event time
``T0 + 60 i``. Each query vector (perturbed from an item, as in the rest of the bench) is asked in
that item's user's scope: alone, with a filter keeping 99% (``common``) or 1% (``rare``) of the
scope, and with a time window over the middle half of the corpus; the same queries unscoped give the
ratio. Recall@10 compares the vector search inside the scope (and filter, window) with exact search
over exactly those items. chromadb, when installed, answers the same queries with ``where``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from agentmem.bench.timing import ms, timed

K = 10
T0 = 1_700_000_000.0
STEP = 60.0  # seconds between items' event times


def spreads(n: int) -> list[int]:
    """Numbers of users to spread ``n`` items over: one user holding everything, ~10k items per user
    and ~100 items per user."""
    return sorted({1, max(2, n // 10_000), max(2, n // 100)})


def _variants(n: int) -> dict[str, tuple[dict[str, Any] | None, float | None, float | None]]:
    """Query variant -> (filters, since, until)."""
    return {"scoped": (None, None, None), "filter 99%": ({"tag": "common"}, None, None),
            "filter 1%": ({"tag": "rare"}, None, None),
            "time window": (None, T0 + STEP * n / 4, T0 + STEP * 3 * n / 4)}


def _rows_mask(n: int, users: int, user: int, filters: dict[str, Any] | None, since: float | None,
               until: float | None) -> np.ndarray:
    rows = np.arange(n)
    m = rows % users == user
    if filters is not None:
        rare = rows % 100 == 0
        m &= rare if filters["tag"] == "rare" else ~rare
    t = T0 + STEP * rows
    if since is not None:
        m &= t >= since
    if until is not None:
        m &= t <= until
    return m


def _truth(vecs: np.ndarray, q: np.ndarray, mask: np.ndarray) -> list[int]:
    rows = np.flatnonzero(mask)
    scores = np.asarray(vecs[rows]) @ q
    return rows[np.argsort(-scores, kind="stable")[:K]].tolist()


def _figures(times: list[float], found: list[list[int]], truth: list[list[int]], base_p50: float | None
             ) -> dict[str, Any]:
    hit = [len(set(f) & set(t)) / max(1, min(K, len(t))) for f, t in zip(found, truth, strict=True) if t]
    p50 = ms(times, 50)
    return {"p50_ms": p50, "p95_ms": ms(times, 95),
            "recall_at_10": float(np.mean(hit)) if hit else None,
            "ratio_to_unscoped": p50 / base_p50 if base_p50 else None}


def run_agentmem(texts: list[str], vecs: np.ndarray, qidx: np.ndarray, qv: np.ndarray, work: Path
                 ) -> dict[str, Any]:
    """Per spread: ingest rate and, per query variant, recall p50/p95 (vector given), vector
    recall@10 inside the scope and the ratio to the unscoped p50 on the same memory."""
    return {str(users): _agentmem_spread(texts, vecs, qidx, qv, work / f"tenants-{users}", users)
            for users in spreads(len(texts))}


def _agentmem_spread(texts: list[str], vecs: np.ndarray, qidx: np.ndarray, qv: np.ndarray, path: Path,
                     users: int) -> dict[str, Any]:
    from agentmem.memory import Memory

    n = len(texts)
    shutil.rmtree(path, ignore_errors=True)
    mem = Memory(path, embedder="minilm")
    t = time.perf_counter()
    row_of: dict[int, int] = {}
    for u in range(users):
        rows = list(range(u, n, users))
        ids = mem.remember_many([texts[r] for r in rows], [{"tag": "rare" if r % 100 == 0 else "common"} for r in rows],
                                scope={"user": f"u{u}"}, times=[T0 + STEP * r for r in rows],
                                embeddings=np.asarray(vecs[rows]), progress=False)
        row_of.update(zip(ids, rows, strict=True))
    mem.consolidate()
    mem.flush()
    ingest = n / (time.perf_counter() - t)
    user_of = [int(qidx[j]) % users for j in range(len(qv))]
    times, _ = timed(lambda j: mem.recall(texts[qidx[j]], k=K, embedding=qv[j]), len(qv))
    unscoped = ms(times, 50)
    figures: dict[str, Any] = {"ingest_per_s": ingest, "unscoped_p50_ms": unscoped}
    for name, (filters, since, until) in _variants(n).items():
        def ask(j: int, filters: Any = filters, since: Any = since, until: Any = until) -> Any:
            return mem.recall(texts[qidx[j]], k=K, scope={"user": f"u{user_of[j]}"}, filters=filters,
                              since=since, until=until, embedding=qv[j])

        times, _ = timed(ask, len(qv))
        found, truth = [], []
        for j, user in enumerate(user_of):
            scope = {"user": f"u{user}"}
            allowed = mem.journal.filters.ids(scope, filters, since, until) \
                if filters is not None or since is not None else None
            found.append([row_of[i] for i, _ in mem.vector.search(qv[j], K, mem.vector.mask(scope, allowed))])
            truth.append(_truth(vecs, qv[j], _rows_mask(n, users, user, filters, since, until)))
        figures[name] = _figures(times, found, truth, unscoped)
    mem.close()
    shutil.rmtree(path, ignore_errors=True)
    return figures


def run_chroma(texts: list[str], vecs: np.ndarray, qidx: np.ndarray, qv: np.ndarray, work: Path
               ) -> dict[str, Any]:
    """The same spreads and queries in chromadb, scope and filters as its ``where``."""
    return {str(users): _chroma_spread(texts, vecs, qidx, qv, work / f"chroma-tenants-{users}", users)
            for users in spreads(len(texts))}


def _where(user: int, filters: dict[str, Any] | None, since: float | None, until: float | None) -> dict[str, Any]:
    terms: list[dict[str, Any]] = [{"user": f"u{user}"}]
    if filters is not None:
        terms.append({"tag": filters["tag"]})
    if since is not None:
        terms += [{"t": {"$gte": since}}, {"t": {"$lte": until}}]
    return terms[0] if len(terms) == 1 else {"$and": terms}


def _chroma_spread(texts: list[str], vecs: np.ndarray, qidx: np.ndarray, qv: np.ndarray, path: Path,
                   users: int) -> dict[str, Any]:
    import chromadb

    n = len(texts)
    shutil.rmtree(path, ignore_errors=True)
    col = chromadb.PersistentClient(path=str(path)).create_collection("tenants", metadata={"hnsw:space": "ip"})
    t = time.perf_counter()
    for s in range(0, n, 5000):
        rows = range(s, min(n, s + 5000))
        col.add(ids=[str(r) for r in rows], embeddings=np.asarray(vecs[s:s + 5000]).tolist(),
                documents=texts[s:s + 5000],
                metadatas=[{"user": f"u{r % users}", "tag": "rare" if r % 100 == 0 else "common",
                            "t": T0 + STEP * r} for r in rows])
    ingest = n / (time.perf_counter() - t)
    times, _ = timed(lambda j: col.query(query_embeddings=[qv[j].tolist()], n_results=K), len(qv))
    unscoped = ms(times, 50)
    figures: dict[str, Any] = {"ingest_per_s": ingest, "unscoped_p50_ms": unscoped}
    user_of = [int(qidx[j]) % users for j in range(len(qv))]
    for name, (filters, since, until) in _variants(n).items():
        wheres = [_where(u, filters, since, until) for u in user_of]

        def ask(j: int, wheres: list[dict[str, Any]] = wheres) -> list[str]:
            return list(col.query(query_embeddings=[qv[j].tolist()], n_results=K, where=wheres[j])["ids"][0])

        times, res = timed(ask, len(qv))
        truth = [_truth(vecs, qv[j], _rows_mask(n, users, u, filters, since, until)) for j, u in enumerate(user_of)]
        figures[name] = _figures(times, [[int(i) for i in r] for r in res], truth, unscoped)
    shutil.rmtree(path, ignore_errors=True)
    return figures


def table(n: int, systems: dict[str, Any]) -> list[str]:
    """Lines of the tenants table for size ``n``."""
    lines = ["  tenants (every query scoped to one user; p50/p95 ms, vector R@10 inside the scope, "
             "p50 / unscoped p50 on the same memory):"]
    for system, spread in systems.items():
        if "error" in spread:
            lines.append(f"  {system}: {spread['error']}")
            continue
        for users, fig in spread.items():
            lines.append(f"  {system:<9} U={int(users):<6,} ingest {fig['ingest_per_s']:>7,.0f}/s  "
                         f"unscoped p50 {fig['unscoped_p50_ms']:.2f}")
            for name in _variants(n):
                f = fig[name]
                r = "-" if f["recall_at_10"] is None else f"{f['recall_at_10']:.3f}"
                vs = "" if name == "scoped" else f"  x{f['p50_ms'] / max(fig['scoped']['p50_ms'], 1e-9):.2f} scoped"
                lines.append(f"      {name:<12} p50 {f['p50_ms']:6.2f}  p95 {f['p95_ms']:6.2f}  R@10 {r}  "
                             f"x{f['ratio_to_unscoped']:.2f} unscoped{vs}")
    return lines
