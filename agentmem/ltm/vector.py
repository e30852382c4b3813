"""The vector memory: a rebuildable cache of long-term embeddings for fast similarity search.

Vectors live in a growable float32 matrix (exact search with numpy, or torch on CUDA); past
``ann_threshold`` rows an HNSW graph (:mod:`agentmem.ltm.hnsw`, filled on a worker thread) is added
for approximate search. Row numbers are the graph's ids, so a boolean row mask (alive, in scope, passes
filters) becomes a FAISS ``IDSelectorBitmap``. Forgotten rows are tombstoned and dropped at the next
rebuild. The cache is saved as an archive naming a rows file and a graph file
(:mod:`agentmem.ltm.vector_files`): written beside, synced, renamed into place.

``add`` returns once the rows are in the matrix; rows the graph does not hold yet are searched
exactly, so every search sees every row. ``save`` and ``close`` finish the insertions first.
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import numpy as np

from agentmem.ltm.hnsw import HnswIndex
from agentmem.ltm.scope_rows import ScopeRows, ScopeSamples
from agentmem.ltm.vector_files import NamedFileMissing, Snapshot, VectorFiles
from agentmem.scope import KEYS as SCOPE_KEYS

# A mask selecting under 1/16 of the rows is searched exactly up to this many rows: HNSW with so
# selective a filter lost recall (see _uses_ann)
SELECTIVE_EXACT = 32_768


class VectorIndex:
    """Exact + approximate inner-product search over unit vectors, with scope-aware row masks."""

    def __init__(self, dim: int, *, ann_threshold: int = 50_000, hnsw_m: int = 32,
                 ef_construction: int = 64, ef_search: int = 64, exact_subset_limit: int = 8_000,
                 background: bool = True) -> None:
        self.dim = dim
        self.ann_threshold = ann_threshold
        # A mask selecting at most this many rows is searched exactly, more through HNSW with the mask
        # as its selector (unless it is selective, see _uses_ann): gathering rows costs per row.
        self.exact_subset_limit = exact_subset_limit
        self.n = 0
        self.dead = 0
        self._vecs = np.zeros((0, dim), dtype=np.float32)
        self._ids = np.zeros(0, dtype=np.int64)
        self._alive = np.zeros(0, dtype=bool)
        self._codes = np.zeros((0, len(SCOPE_KEYS)), dtype=np.int32)  # 0 = key absent
        self._times = np.zeros(0, dtype=np.float64)  # event time, else creation time; NaN: unknown
        self._interned: list[dict[str, int]] = [{} for _ in SCOPE_KEYS]
        self._row: dict[int, int] = {}
        self.hnsw = HnswIndex(self, dim, threshold=ann_threshold, m=hnsw_m, ef_construction=ef_construction,
                              ef_search=ef_search, background=background)
        self.files = VectorFiles(dim)
        self._gpu: Any = None  # torch copy of the vectors on CUDA, when present
        self._sample: tuple[int, np.ndarray] | None = None  # (n then, contiguous spread of rows)
        self._scope_samples = ScopeSamples()
        self._scope_rows = ScopeRows()

    # --- what the HNSW graph reads (agentmem.ltm.hnsw.RowSource) -------------------------------

    @property
    def matrix(self) -> np.ndarray:
        """The float32 rows; rows [0, n) are valid. Read only."""
        return self._vecs

    @property
    def row_ids(self) -> np.ndarray:
        """The item id of each row. Read only."""
        return self._ids

    @property
    def live(self) -> np.ndarray:
        """Whether each row is alive. Read only."""
        return self._alive

    # --- writes --------------------------------------------------------------------------------

    @property
    def has_ann(self) -> bool:
        """Whether the HNSW index exists (the memory has reached ``ann_threshold`` rows)."""
        return self.hnsw.index is not None

    @property
    def ann_rows(self) -> int:
        """Rows the HNSW index holds so far (0 without one); later rows are searched exactly."""
        return self.hnsw.ntotal

    def __len__(self) -> int:
        return self.n - self.dead

    def __contains__(self, item_id: int) -> bool:
        return item_id in self._row

    def ids(self) -> np.ndarray:
        """Ids of live rows."""
        return self._ids[: self.n][self._alive[: self.n]]

    def vectors_of(self, ids: list[int]) -> np.ndarray:
        """The cached vectors of live ``ids``, shape (len(ids), dim); KeyError for an id not cached."""
        return self._vecs[[self._row[int(i)] for i in ids]].reshape(len(ids), self.dim)

    def scores_of(self, ids: list[int], query: np.ndarray) -> np.ndarray:
        """Cosines of ``query`` with the cached vectors of ``ids``; 0.0 for an id not cached."""
        rows = [self._row.get(int(i), -1) for i in ids]
        if self.n == 0:
            return np.zeros(len(rows), dtype=np.float32)
        out = self._vecs[rows] @ np.asarray(query, dtype=np.float32)
        if -1 in rows:
            out[np.asarray(rows) < 0] = 0.0
        return out

    def reserve(self, extra: int) -> None:
        """Make room for ``extra`` more rows at once, so that adding them copies nothing (untouched
        room is virtual memory only): growing by half each time it filled copied every row again."""
        self._grow(extra)

    def _grow(self, extra: int) -> None:
        need = self.n + extra
        if need <= len(self._ids):
            return
        cap = max(need, len(self._ids) + len(self._ids) // 2, 1024)
        for name in ("_vecs", "_ids", "_alive", "_codes", "_times"):
            old = getattr(self, name)
            # uninitialised: rows past n are never read, and untouched pages cost no memory
            new = np.empty((cap, *old.shape[1:]), dtype=old.dtype)
            new[: self.n] = old[: self.n]
            setattr(self, name, new)

    def _code(self, key_index: int, value: str | None, create: bool) -> int:
        if value is None:
            return 0
        table = self._interned[key_index]
        if value not in table:
            if not create:
                return -1  # a value never stored: matches nothing
            table[value] = len(table) + 1
        return table[value]

    def add(self, ids: np.ndarray, vecs: np.ndarray, scopes: list[dict[str, str]], *,
            times: Any = None, defer_ann: bool = False) -> None:
        """Add rows; ``vecs`` has shape (len(ids), dim) and unit-length rows; ``times`` (unix seconds:
        event time, else creation time) lets :meth:`mask` bound rows by time. ``defer_ann`` leaves them,
        and every row after them, out of the approximate index until the next ``save`` (they are
        searched exactly meanwhile): catching up after a crash then costs a copy, not HNSW insertions."""
        vecs = np.ascontiguousarray(vecs, dtype=np.float32).reshape(len(ids), self.dim)
        self._grow(len(ids))
        start, end = self.n, self.n + len(ids)
        self._vecs[start:end] = vecs
        self._ids[start:end] = ids
        self._alive[start:end] = True
        self._times[start:end] = np.nan if times is None else np.asarray(times, dtype=np.float64)
        for j, scope in enumerate(scopes):
            self._codes[start + j] = [self._code(i, scope.get(k), True) for i, k in enumerate(SCOPE_KEYS)]
        for j, item_id in enumerate(ids):
            self._row[int(item_id)] = start + j
        self.n = end
        self._gpu = None
        self.hnsw.deferred = self.hnsw.deferred or defer_ann
        self.hnsw.added()

    def wait(self) -> None:
        """Block until the background worker has inserted every pending row (or retired)."""
        self.hnsw.wait()

    def close(self) -> None:
        """Stop the worker (pending rows stay searched exactly, and are inserted by a later ``save``)
        and let a background save finish."""
        self.hnsw.close()
        self.files.wait()

    def remove(self, ids: list[int]) -> None:
        for item_id in ids:
            row = self._row.pop(int(item_id), None)
            if row is not None and self._alive[row]:
                self._alive[row] = False
                self.dead += 1
        if self.dead > 1024 and self.dead > 0.2 * self.n:
            self.compact()

    def compact(self) -> None:
        """Drop tombstoned rows and rebuild the approximate index."""
        with self.hnsw.lock.exclusive():
            keep = self._alive[: self.n]
            ids, vecs, codes = self._ids[: self.n][keep], self._vecs[: self.n][keep], self._codes[: self.n][keep]
            times = self._times[: self.n][keep]
            self.n, self.dead, self.hnsw.index, self._gpu, self._sample = 0, 0, None, None, None
            self._scope_rows.reset()  # rows renumbered: regrouped on the next small-scope mask
            self.files.renumbered()  # and a new rows file at the next save
            self._vecs, self._ids = np.zeros((0, self.dim), np.float32), np.zeros(0, np.int64)
            self._alive, self._codes = np.zeros(0, bool), np.zeros((0, len(SCOPE_KEYS)), np.int32)
            self._times = np.zeros(0, np.float64)
            self._row = {}
            self._grow(len(ids))
            self._vecs[: len(ids)], self._ids[: len(ids)], self._codes[: len(ids)] = vecs, ids, codes
            self._alive[: len(ids)] = True
            self._times[: len(ids)] = times
            self._row = {int(i): r for r, i in enumerate(ids)}
            self.n = len(ids)
            self.hnsw.deferred = False
            if self.n >= self.ann_threshold:
                self.hnsw.build()

    # --- search --------------------------------------------------------------------------------

    def mask(self, scope: dict[str, str], allowed: np.ndarray | None = None, since: float | None = None,
             until: float | None = None) -> np.ndarray | None:
        """Boolean mask over rows [0, n) of live rows in ``scope`` (and in ``allowed`` ids, and with a
        time in [since, until], if given; a row of unknown time is outside any bound); None when every
        live row qualifies and nothing is dead (no mask needed). A small scope's mask is computed on
        its own rows only (see ScopeRows), a large one's by comparing every row's codes."""
        if not scope and allowed is None and since is None and until is None and self.dead == 0:
            return None
        wanted = [(i, self._code(i, scope[key], False)) for i, key in enumerate(SCOPE_KEYS) if key in scope]
        rows = self._scope_rows.smallest(self._codes, self.n, wanted)
        sel: slice | np.ndarray = slice(0, self.n) if rows is None else rows
        keep = self._alive[sel].copy()
        for i, code in wanted:
            keep &= self._codes[sel, i] == code
        if allowed is not None:
            if rows is None and len(allowed) < self.n // 16:  # a few rows: look them up (isin sorts every id)
                listed = np.zeros(self.n, dtype=bool)
                listed[[r for r in map(self._row.get, allowed.tolist()) if r is not None]] = True
                keep &= listed
            else:
                keep &= np.isin(self._ids[sel], allowed)
        if since is not None:
            keep &= self._times[sel] >= since
        if until is not None:
            keep &= self._times[sel] <= until
        if rows is not None:
            m = np.zeros(self.n, dtype=bool)
            m[rows[keep]] = True
            return m
        if self.dead == 0 and allowed is None and since is None and until is None and keep.all():
            return None  # the scope is the whole memory (one user's memory): search it without a selector
        return keep

    def time_of(self, item_id: int) -> float:
        """The cached time of a live id (NaN if unknown); KeyError for an id not cached."""
        return float(self._times[self._row[int(item_id)]])

    def set_times(self, ids: np.ndarray, times: np.ndarray) -> None:
        """Fill in the times of cached ids (a cache saved before times were kept)."""
        rows = [self._row[int(i)] for i in ids if int(i) in self._row]
        keep = [int(i) in self._row for i in ids]
        self._times[rows] = np.asarray(times, dtype=np.float64)[keep]

    def unknown_times(self) -> np.ndarray:
        """Live ids whose time is unknown."""
        n = self.n
        return self._ids[:n][self._alive[:n] & np.isnan(self._times[:n])]

    def search(self, query: np.ndarray, k: int, mask: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-``k`` (id, cosine) among rows selected by ``mask`` (all live rows when None)."""
        if self.n == 0 or k <= 0:
            return []
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(self.dim)
        if mask is None and self.dead:  # None means every live row: not the tombstoned ones
            mask = self._alive[: self.n]
        rows = None if mask is None else np.flatnonzero(mask)
        if rows is not None and len(rows) == 0:
            return []
        if self._uses_ann(rows):
            return self.hnsw.search(q, k, mask, rows)
        return self._top(*self._exact(q, rows), k)

    def search_and_sample(self, query: np.ndarray, k: int, mask: np.ndarray | None = None,
                          n: int = 2048, key: Hashable | None = None) -> tuple[list[tuple[int, float]], np.ndarray]:
        """``(search(query, k, mask), sample_scores(query, mask, n, key))`` in one pass: an exact search
        has every score at hand already, so the sample is read from them (the very same rows)."""
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(self.dim)
        rows = None if mask is None else np.flatnonzero(mask)
        if (self.n == 0 or k <= 0 or (rows is not None and len(rows) == 0) or self._uses_ann(rows)
                or (rows is None and self.dead > 0)):
            return self.search(q, k, mask), self.sample_scores(q, mask, n, key)
        rows, scores = self._exact(q, rows)
        step = max(1, len(rows) // n) if len(rows) > n else 1
        return self._top(rows, scores, k), scores[::step][:n]

    def _uses_ann(self, rows: np.ndarray | None) -> bool:
        """Whether a search over ``rows`` (None: all) goes to the HNSW index rather than exact. A
        selective mask (under 1/16 of the rows) is searched exactly up to ``SELECTIVE_EXACT`` rows: HNSW
        walks a graph of mostly excluded rows there, and a 1% scope of 1M rows reached recall@10 0.84."""
        if self.hnsw.index is None or rows is None:
            return self.hnsw.index is not None
        size = len(rows)
        return size > self.exact_subset_limit and not (size <= SELECTIVE_EXACT and 16 * size < self.n)

    def _exact(self, q: np.ndarray, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cosines of ``q`` with them): a subset's own product when small, else all rows'."""
        if rows is None:
            return np.arange(self.n), self._scores_all(q)
        if len(rows) < self.n // 4:
            return rows, self._vecs[rows] @ q
        return rows, self._scores_all(q)[rows]

    def search_batch(self, queries: np.ndarray, k: int, mask: np.ndarray | None = None,
                     ef_search: int | None = None) -> list[list[tuple[int, float]]]:
        """``search`` for many queries (n, dim) at once: one matrix product or one FAISS call.
        ``ef_search`` overrides the HNSW beam (a near-duplicate check needs less than a recall)."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        if self.n == 0 or k <= 0 or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        if mask is None and self.dead:  # None means every live row: not the tombstoned ones
            mask = self._alive[: self.n]
        rows = np.arange(self.n) if mask is None else np.flatnonzero(mask)
        if len(rows) == 0:
            return [[] for _ in range(len(queries))]
        if self._uses_ann(None if mask is None else rows):
            return self.hnsw.search_batch(queries, k, mask, None if mask is None else rows, ef_search)
        sub = self._vecs[rows] if len(rows) < self.n else self._vecs[: self.n]
        scores = queries @ sub.T  # (n_queries, len(rows))
        if k == 1:
            best = scores.argmax(axis=1)
            return [[(int(self._ids[rows[j]]), float(s[j]))] for j, s in zip(best, scores, strict=True)]
        return [self._top(rows, s, k) for s in scores]

    def sample_scores(self, query: np.ndarray, mask: np.ndarray | None = None, n: int = 2048,
                      key: Hashable | None = None) -> np.ndarray:
        """Cosines of ``query`` with up to ``n`` live rows selected by ``mask``: all of them when there
        are fewer, an even spread otherwise. Recall uses it to see the whole score distribution.
        ``key`` names the mask (a scope): a large scope's spread is then kept (see ScopeSamples)."""
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(self.dim)
        if mask is None and self.dead == 0:  # every row: an even spread, kept as one contiguous block
            cached = self._sample
            if cached is None or len(cached[1]) > n or not cached[0] <= self.n <= 1.01 * cached[0] + 16:
                # refreshed once the memory has grown by 1%; a contiguous copy multiplies faster
                cached = self._sample = (self.n, np.ascontiguousarray(self._vecs[: self.n: max(1, self.n // n)][:n]))
            return cached[1] @ q
        if key is not None and mask is not None:
            kept = self._scope_samples.get(key, self.dead, self.files.generation, self.n)
            if kept is not None:
                return kept @ q
        rows = np.flatnonzero(self._alive[: self.n] if mask is None else mask)
        if len(rows) > n:
            rows = rows[:: len(rows) // n][:n]
        if key is None or mask is None or len(rows) < n:  # a small scope: its rows are few to gather
            return self._vecs[rows] @ q
        return self._scope_samples.keep(key, self.dead, self.files.generation, self.n,
                                        lambda: self._vecs[rows]) @ q

    def _scores_all(self, q: np.ndarray) -> np.ndarray:
        from agentmem.devices import has_cuda

        if self.n > 4096 and has_cuda():
            import torch

            if self._gpu is None:
                self._gpu = torch.from_numpy(self._vecs[: self.n]).to("cuda")
            return (self._gpu @ torch.from_numpy(q).to("cuda")).cpu().numpy()
        return self._vecs[: self.n] @ q

    def _top(self, rows: np.ndarray, scores: np.ndarray, k: int) -> list[tuple[int, float]]:
        part = np.argpartition(scores, len(scores) - k)[len(scores) - k:] if len(scores) > k else \
            np.arange(len(scores))
        order = part[np.argsort(-scores[part], kind="stable")]
        return [(int(self._ids[rows[j]]), float(scores[j])) for j in order]

    # --- persistence ---------------------------------------------------------------------------

    def save(self, path: Path, background: bool = False) -> int:
        """Write the cache atomically (:mod:`agentmem.ltm.vector_files`): rows not saved yet are
        appended to the rows file and the HNSW graph goes to a new file, both synced first; the archive
        at ``path`` names them and replaces the old one in one rename. Returns the rows it holds.

        ``background=True`` (the periodic saves of a long ingest) saves the rows the HNSW index holds
        at the call: the graph is written and the small arrays copied under the index lock, and a
        saver thread appends the rows, syncs and renames meanwhile, so neither the writer nor the HNSW
        worker waits for the disk. Saves run one at a time; a background save that fails is logged
        and leaves the old archive, and the next save writes everything again."""
        self.files.wait()
        if background and not self.hnsw.deferred:
            with self.hnsw.lock.exclusive():
                snap = self._snapshot(path, self.hnsw.ntotal if self.has_ann else self.n)
            self.files.start(path, snap)
            return snap.n
        with self.hnsw.lock.exclusive():
            self.hnsw.deferred = False
            self.hnsw.index_pending()
            self.files.finish(path, self._snapshot(path, self.n))
            return self.n

    def wait_saved(self) -> None:
        """Block until a background save in flight has finished (or failed, logged)."""
        self.files.wait()

    def _snapshot(self, path: Path, n: int) -> Snapshot:
        """What a save of rows [0, n) writes, fixed now (caller holds the index lock)."""
        files = self.files
        snap = Snapshot(n, files.generation, self._vecs,
                        {"ids": self._ids[:n].copy(), "alive": self._alive[:n].copy(),
                         "codes": self._codes[:n].copy(), "times": self._times[:n].copy()},
                        [dict(t) for t in self._interned], (files.rows_file, files.rows_saved, files.rows_crc))
        if self.has_ann:
            snap.ann_file = path.with_name(f"{path.stem}.{uuid.uuid4().hex[:12]}.hnsw")
            self.hnsw.write(snap.ann_file)
        return snap

    @classmethod
    def load(cls, path: Path, dim: int, **options: Any) -> VectorIndex:
        """Read a saved cache; raises ValueError (or OSError) if it is unreadable or for another dim.
        A reader can lose a race with a writer's save (the archive it read names an HNSW file the
        writer has just replaced and deleted): the archive is then read again, at most twice more."""
        for attempt in range(3):
            try:
                return cls._load(path, dim, **options)
            except NamedFileMissing:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _load(cls, path: Path, dim: int, **options: Any) -> VectorIndex:
        index = cls(dim, **options)
        archive = index.files.read_archive(path)
        meta, arrays = archive.meta, archive.arrays
        n = int(meta["n"])
        # headroom for the adds to come (pages past n are never touched until used): growing from
        # exactly n on the first add after opening copied the whole cache
        index._grow(n + n // 2)
        index._ids[:n], index._alive[:n], index._codes[:n] = arrays["ids"], arrays["alive"], arrays["codes"]
        index._times[:n] = arrays.get("times", np.nan)  # older caches: filled by the caller
        if "vecs" in arrays:  # format 1 before HNSW (after it, the HNSW index held them)
            index._vecs[:n] = arrays["vecs"]
        index.n, index.dead = n, int(meta["dead"])
        if int((~index._alive[:n]).sum()) != index.dead:
            raise ValueError("tombstone count does not match")
        if "vec_file" in meta:
            index.files.read_rows(path, str(meta["vec_file"]), index._vecs[:n], int(meta["vec_crc32"]))
        index._interned = [dict(t) for t in meta["interned"]]
        index._row = {int(i): r for r, i in enumerate(index._ids[:n]) if index._alive[r]}
        graph = index.files.read_graph(path, archive)
        if graph is not None:
            if graph.ntotal != n or graph.d != dim:
                raise ValueError(f"approximate index holds {graph.ntotal} rows of {graph.d} dims, "
                                 f"expected {n} of {dim}")
            index.hnsw.adopt(graph)
        index.hnsw.deferred = not index.has_ann and n >= index.ann_threshold  # built at the next save, not here
        return index
