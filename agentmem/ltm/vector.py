"""The vector memory: a rebuildable cache of long-term embeddings for fast similarity search.

Vectors live in a growable float32 matrix (exact search with numpy, or torch on CUDA); past
``ann_threshold`` rows a FAISS HNSW index is added for approximate search. Row numbers are the FAISS
ids, so a boolean row mask (alive, in scope, passes filters) becomes a FAISS ``IDSelectorBitmap``.
Forgotten rows are tombstoned and dropped at the next rebuild. The cache is saved as an ``.npz``
archive (no pickle), written to a temporary file and renamed into place, and the files it names.

The HNSW index keeps its own copy of the vectors in bfloat16 (half the bytes of float32, so half the
memory traffic of a graph walk): it only chooses candidates, whose cosines are then computed from the
float32 matrix, so every score a search returns is exact. Its file holds the graph alone.

Files, all named by the archive (``vectors.npz``: ids, tombstones, scopes, times): the float32 rows
in ``vectors.<id>.f32``, which a save only appends to (rows are never changed in place; compaction
writes a new file), and the HNSW graph in ``vectors.<id>.hnsw``; the bfloat16 copy is encoded from
the rows on load. A save so writes the new rows, the graph and the small arrays, not every vector.

HNSW insertion is the costliest part of adding rows, so it runs on a background thread (FAISS
releases the GIL): ``add`` returns once the rows are in the matrix, and rows the approximate index
does not hold yet are searched exactly, so every search sees every row. A lock keeps FAISS searches
and insertions apart; ``save`` and ``close`` finish the insertions first.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import threading
import time
import uuid
import weakref
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from agentmem.scope import KEYS as SCOPE_KEYS
from agentmem.threads import cores, faiss_threads

FORMAT = 2  # 2: float32 rows in an append-only file, HNSW file without its vectors; 1 is still read
log = logging.getLogger("agentmem")
ANN_BATCH = 1024  # rows waiting before HNSW insertion starts; fewer wait in an exactly-searched tail
# A search for fewer than this many rows takes this many candidates from HNSW and keeps the k with the
# highest exact cosines: the index ranks by bfloat16 scores, which misorder close neighbours.
RESCORE = 40
SCOPE_SAMPLES = 8  # large scopes whose sample spread is kept (3 MB each at 2,048 rows of 384 floats)
SCOPE_ROWS_MIN = 50_000  # from this many rows, a small scope's mask is built from its rows (see mask)
# A mask selecting under 1/16 of the rows is searched exactly up to this many rows: HNSW with so
# selective a filter lost recall (see _uses_ann)
SELECTIVE_EXACT = 32_768
_NO_ROWS = np.zeros(0, dtype=np.int64)
ANN_CHUNK = 128  # rows inserted per lock hold on the background thread (a search waits at most that)
MAX_BACKLOG = 2 * ANN_BATCH  # an add waits while more rows than this await the worker (they are searched
# exactly by every near-duplicate check: 8,192 rather than 2,048 cost 100k given vectors 4,520 -> 4,355 items/s)


_WORKING: weakref.WeakSet[VectorIndex] = weakref.WeakSet()  # indexes whose worker may be running


@atexit.register
def _stop_workers() -> None:
    """At interpreter exit, stop insertion workers between chunks: a daemon thread left inside
    FAISS (OpenMP) while the process tears down aborts it ("terminate called ...")."""
    for index in list(_WORKING):
        index.close()


class _NamedFileMissing(ValueError):
    """A file an archive names (rows, HNSW graph) is not there (damage, or a reader racing a writer's
    save)."""


def _named_file(archive: Path, name: str, what: str) -> Path:
    """The file ``name`` beside ``archive``, which must be there; ``what`` names it in the error."""
    file = archive.with_name(name)
    if "/" in name or not file.is_file():
        raise _NamedFileMissing(f"{what} {name} is missing")
    return file


class VectorIndex:
    """Exact + approximate inner-product search over unit vectors, with scope-aware row masks."""

    def __init__(self, dim: int, *, ann_threshold: int = 50_000, hnsw_m: int = 32,
                 ef_construction: int = 64, ef_search: int = 64, exact_subset_limit: int = 8_000,
                 background: bool = True) -> None:
        self.dim = dim
        self.ann_threshold = ann_threshold
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        # A mask selecting at most this many rows is searched exactly, more through HNSW with the mask
        # as its selector. Gathering the rows costs ~0.18 us per row: a 10k-row scope (100k items over
        # 10 users) took 4.9 ms exactly against 3.5 ms through HNSW, at recall@10 0.983 inside the
        # scope (hash vectors; issue 15's bench checks MiniLM ones). 20,000 before.
        self.exact_subset_limit = exact_subset_limit
        self.n = 0
        self._vecs = np.zeros((0, dim), dtype=np.float32)
        self._ids = np.zeros(0, dtype=np.int64)
        self._alive = np.zeros(0, dtype=bool)
        self._codes = np.zeros((0, len(SCOPE_KEYS)), dtype=np.int32)  # 0 = key absent
        self._times = np.zeros(0, dtype=np.float64)  # event time, else creation time; NaN: unknown
        self._interned: list[dict[str, int]] = [{} for _ in SCOPE_KEYS]
        self._row: dict[int, int] = {}
        self._ann: Any = None  # faiss.IndexHNSWSQ (bfloat16; IndexHNSWFlat if saved by format 1) over rows [0, n)
        self._gpu: Any = None  # torch copy of the vectors on CUDA, when present
        self._sample: tuple[int, np.ndarray] | None = None  # (n then, contiguous spread of rows)
        # scope key -> (dead, generation, n then, contiguous spread of the scope's rows), last used last
        self._scope_samples: OrderedDict[Hashable, tuple[int, int, int, np.ndarray]] = OrderedDict()
        self._samples_lock = threading.Lock()
        # per scope key: code -> rows with it (ascending) among rows [0, _scope_rows_n), None once more
        # than 1/32 of the rows; filled when a mask first needs it
        self._scope_rows: list[dict[int, np.ndarray | None]] = [{} for _ in SCOPE_KEYS]
        self._scope_rows_n = 0
        self._scope_rows_lock = threading.Lock()
        self._params: dict[int, Any] = {}  # efSearch -> faiss.SearchParametersHNSW (unfiltered searches)
        self._deferred = False  # rows past _ann.ntotal wait for the next save (see add)
        self._vec_file: str | None = None  # the rows file the last save wrote (or load read)
        self._vec_saved = 0  # rows of it that are written and synced, the same as ours
        self._vec_crc = 0  # CRC-32 of those rows' bytes (continued as rows are appended)
        self.dead = 0
        self.background = background  # HNSW insertion on a worker thread
        self._ann_lock = threading.RLock()  # FAISS calls on _ann, and replacing _ann or the arrays
        self._searchers = 0  # searches waiting for _ann_lock: the worker steps aside between chunks
        self._searchers_lock = threading.Lock()
        self._waiters = 0  # threads blocked until the worker catches up: it may use every core meanwhile
        self._worker_lock = threading.Lock()  # starting / retiring the worker
        self._worker: threading.Thread | None = None
        self._closing = False
        self._saver: threading.Thread | None = None  # a background save finishing its files
        self._generation = 0  # bumped when rows are renumbered (compaction): a save in flight is stale

    # --- writes --------------------------------------------------------------------------------

    @property
    def has_ann(self) -> bool:
        """Whether the HNSW index exists (the memory has reached ``ann_threshold`` rows)."""
        return self._ann is not None

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
        room is virtual memory only). Growing by half each time it filled copied every row again and
        again: ~3% of a 1M-item ingest."""
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
        self._deferred = self._deferred or defer_ann
        # HNSW insertions pay off in batches: until ANN_BATCH rows are waiting they are searched exactly
        if not self._deferred and self._pending() >= (self.ann_threshold if self._ann is None else ANN_BATCH):
            if self.background:
                self._start_worker()
                # backpressure: a writer faster than HNSW insertion would grow the exactly searched tail
                if self._ann is not None and self._pending() > MAX_BACKLOG and self._worker is not None:
                    with self._waiting():
                        while self._ann is not None and self._pending() > MAX_BACKLOG and self._worker is not None:
                            time.sleep(0.001)
            else:
                self._index_pending()

    def _pending(self) -> int:
        """Rows the approximate index lacks (all rows while there is none)."""
        ann = self._ann
        return self.n - (0 if ann is None else ann.ntotal)

    def _index_pending(self) -> None:
        """Insert rows the approximate index lacks (or build it once the size calls for one), here."""
        with self._ann_lock:
            if self._ann is not None and self._ann.ntotal < self.n:
                self._ann.add(self._vecs[self._ann.ntotal : self.n])
            elif self._ann is None and self.n >= self.ann_threshold:
                self._build_ann()

    def _start_worker(self) -> None:
        with self._worker_lock:
            if self._worker is None and not self._closing:
                _WORKING.add(self)
                self._worker = threading.Thread(target=self._catch_up, name="agentmem-hnsw", daemon=True)
                self._worker.start()

    def _catch_up(self) -> None:
        """Worker: insert pending rows ANN_CHUNK at a time (building the index first if there is none),
        until none are pending; then retire. Rows are only ever appended past ``n`` by ``add`` and
        replaced wholesale under ``_ann_lock``, so rows below a ``n`` read here stay put.

        Chunks are inserted on this thread alone (OpenMP's thread count is a per-thread setting): a
        writer is busy on the other core meanwhile, and FAISS's second OpenMP thread spin-waited against
        it. 100k given vectors (with consolidation on one thread too, see Memory._consolidate): 4,516 ->
        4,717-5,081 items/s over runs, process CPU 35.5 -> ~30 s. While a writer is blocked on the
        worker (backpressure, ``wait``) its core is free: chunks then take every core, eight times as
        many rows at once (threads switched for single chunks had gained nothing). 100k given vectors:
        5,892-6,016 -> 6,354-6,601 items/s; 1M: 4,414 -> 4,597."""
        import faiss

        threads = 0
        while True:
            wanted = cores() if self._waiters else 1
            if wanted != threads:
                faiss.omp_set_num_threads(wanted)
                threads = wanted
            with self._ann_lock:
                if self._ann is None and not self._closing and not self._deferred and self.n >= self.ann_threshold:
                    self._build_ann(self.n)  # the rows so far, in one call; the rest follow in chunks
                ann, n = self._ann, self.n
                if ann is not None and not self._closing and not self._deferred and ann.ntotal < n:
                    start = ann.ntotal
                    chunk = ANN_CHUNK if threads == 1 else 8 * ANN_CHUNK  # a writer waits meanwhile
                    ann.add(self._vecs[start : min(n, start + chunk)])
                    busy = True
                else:
                    busy = False
            if busy:
                # a released lock is not handed over: the worker would take it straight back
                while self._searchers:
                    time.sleep(0.0002)
                continue
            with self._worker_lock:
                ann = self._ann
                if self._closing or self._deferred or ann is None or ann.ntotal >= self.n:
                    self._worker = None
                    return

    @contextlib.contextmanager
    def _waiting(self) -> Iterator[None]:
        """Count the calling thread as blocked on the worker for the block's duration."""
        with self._searchers_lock:
            self._waiters += 1
        try:
            yield
        finally:
            with self._searchers_lock:
                self._waiters -= 1

    def wait(self) -> None:
        """Block until the background worker has inserted every pending row (or retired)."""
        worker = self._worker
        if worker is not None:
            with self._waiting():
                worker.join()

    def close(self) -> None:
        """Stop the worker (pending rows stay searched exactly, and are inserted by a later ``save``)
        and let a background save finish."""
        self._closing = True
        self.wait()
        self.wait_saved()

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
        with self._ann_lock:
            self._compact()

    def _compact(self) -> None:
        keep = self._alive[: self.n]
        ids, vecs, codes = self._ids[: self.n][keep], self._vecs[: self.n][keep], self._codes[: self.n][keep]
        times = self._times[: self.n][keep]
        self.n, self.dead, self._ann, self._gpu, self._sample = 0, 0, None, None, None
        with self._scope_rows_lock:  # rows renumbered: regrouped on the next small-scope mask
            self._scope_rows, self._scope_rows_n = [{} for _ in SCOPE_KEYS], 0
        self._vec_file, self._vec_saved, self._vec_crc = None, 0, 0  # rows renumbered: a new file next save
        self._generation += 1
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
        self._deferred = False
        if self.n >= self.ann_threshold:
            self._build_ann()

    def _build_ann(self, rows: int | None = None) -> None:
        """A new HNSW index over the first ``rows`` rows (all by default). Caller holds ``_ann_lock``."""
        import faiss

        # bfloat16 storage: at 300k rows on one core, insertion 7,016 -> 8,796 rows/s and search
        # 0.160 -> 0.137 ms against float32, recall@10 0.979 -> 0.977 before the exact rescoring
        index = faiss.IndexHNSWSQ(self.dim, faiss.ScalarQuantizer.QT_bf16,  # type: ignore[arg-type]  # stubs
                                  self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.ef_construction
        index.add(self._vecs[: self.n if rows is None else rows])
        self._ann = index

    def _read_rows(self, path: Path, name: str, n: int, crc: int) -> None:
        """Read the first ``n`` rows of the rows file ``name`` into the matrix (later rows are a
        crashed save's, never counted) and check their CRC-32 (2.2 GB/s: 0.7 s for 1M rows of 384)."""
        file = _named_file(path, name, "vector rows file")
        want = n * self.dim * 4
        try:
            with open(file, "rb") as fh:
                got = fh.readinto(self._vecs[:n].data) if n else 0
        except FileNotFoundError as exc:  # deleted while being read
            raise _NamedFileMissing(f"vector rows file {name} is missing") from exc
        if got != want:
            raise ValueError(f"vector rows file {name} holds {got} bytes, expected {want}")
        if n and zlib.crc32(self._vecs[:n].data) != crc:
            raise ValueError(f"vector rows file {name} fails its checksum")
        self._vec_file, self._vec_saved, self._vec_crc = name, n, crc

    def _attach_storage(self, ann: Any) -> None:
        """Give an HNSW graph read without its vectors (``IO_FLAG_SKIP_STORAGE``) the vectors of rows
        [0, ann.ntotal), encoded as its class stores them."""
        import faiss

        storage: Any  # an index type of FAISS's
        if isinstance(ann, faiss.IndexHNSWSQ):
            storage = faiss.IndexScalarQuantizer(self.dim, faiss.ScalarQuantizer.QT_bf16, faiss.METRIC_INNER_PRODUCT)
        elif isinstance(ann, faiss.IndexHNSWFlat):
            storage = faiss.IndexFlatIP(self.dim)
        else:
            raise ValueError(f"unexpected approximate index {type(ann).__name__}")
        storage.add(self._vecs[: ann.ntotal])
        ann.storage = storage
        ann.own_fields = True  # the graph frees it
        storage.this.disown()

    # --- search --------------------------------------------------------------------------------

    def mask(self, scope: dict[str, str], allowed: np.ndarray | None = None, since: float | None = None,
             until: float | None = None) -> np.ndarray | None:
        """Boolean mask over rows [0, n) of live rows in ``scope`` (and in ``allowed`` ids, and with a
        time in [since, until], if given; a row of unknown time is outside any bound); None when every
        live row qualifies and nothing is dead (no mask needed)."""
        if not scope and allowed is None and since is None and until is None and self.dead == 0:
            return None
        rows = self._small_scope_rows(scope)
        if rows is not None:
            return self._mask_of_rows(rows, scope, allowed, since, until)
        m = self._alive[: self.n].copy()
        for i, key in enumerate(SCOPE_KEYS):
            if key in scope:
                m &= self._codes[: self.n, i] == self._code(i, scope[key], False)
        if allowed is not None:
            if len(allowed) < self.n // 16:  # a few rows: look them up (isin sorts every row id)
                wanted = np.zeros(self.n, dtype=bool)
                wanted[[r for r in map(self._row.get, allowed.tolist()) if r is not None]] = True
                m &= wanted
            else:
                m &= np.isin(self._ids[: self.n], allowed)
        if since is not None:
            m &= self._times[: self.n] >= since
        if until is not None:
            m &= self._times[: self.n] <= until
        if self.dead == 0 and allowed is None and since is None and until is None and m.all():
            return None  # the scope is the whole memory (one user's memory): search it without a selector
        return m

    def _small_scope_rows(self, scope: dict[str, str]) -> np.ndarray | None:
        """The rows (live or not) holding the value of the scope's rarest key, when those are few
        (under 1/32 of the rows); else None. Comparing every row's code cost ~1 ms per mask at 1M rows,
        however small the scope: 10,000 users of 100 items each."""
        if not scope or self.n < SCOPE_ROWS_MIN:
            return None
        with self._scope_rows_lock:
            built, limit = self._scope_rows_n, self.n // 32
            if built < self.n:  # group the rows added since by their codes, once per key
                codes = self._codes[built: self.n]
                for i in range(len(SCOPE_KEYS)):
                    order = np.argsort(codes[:, i], kind="stable")
                    values, starts = np.unique(codes[order, i], return_index=True)
                    table = self._scope_rows[i]
                    for value, part in zip(values.tolist(), np.split(order + built, starts[1:]), strict=True):
                        have = table.get(value, _NO_ROWS)
                        # a large scope (and the absent key, code 0) is masked by comparing codes:
                        # no longer tracked, it costs no copy as it grows
                        table[value] = None if value == 0 or have is None or len(have) + len(part) > limit \
                            else np.concatenate([have, part]) if len(have) else part
                self._scope_rows_n = self.n
            best: np.ndarray | None = None
            for i, key in enumerate(SCOPE_KEYS):
                if key in scope:
                    rows = self._scope_rows[i].get(self._code(i, scope[key], False), _NO_ROWS)
                    if rows is not None and (best is None or len(rows) < len(best)):
                        best = rows
        return best if best is not None and len(best) <= limit else None

    def _mask_of_rows(self, rows: np.ndarray, scope: dict[str, str], allowed: np.ndarray | None,
                      since: float | None, until: float | None) -> np.ndarray:
        """:meth:`mask` computed on ``rows`` only (those of a small scope)."""
        keep = self._alive[rows]
        for i, key in enumerate(SCOPE_KEYS):
            if key in scope:
                keep &= self._codes[rows, i] == self._code(i, scope[key], False)
        if allowed is not None:
            keep &= np.isin(self._ids[rows], allowed)
        if since is not None:
            keep &= self._times[rows] >= since
        if until is not None:
            keep &= self._times[rows] <= until
        m = np.zeros(self.n, dtype=bool)
        m[rows[keep]] = True
        return m

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
            return self._search_ann(q, k, mask, rows)
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
        if self._ann is None or rows is None:
            return self._ann is not None
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
            return self._search_ann_batch(queries, k, mask, None if mask is None else rows, ef_search)
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
        ``key`` names the mask (a scope): a large scope's spread is then kept as a contiguous copy
        and reused until the memory grows by 1% or loses a row; gathering 2,048 rows of a
        10k-row scope was a sixth of its recall."""
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(self.dim)
        if mask is None and self.dead == 0:  # every row: an even spread, kept as one contiguous block
            cached = self._sample
            if cached is None or len(cached[1]) > n or not cached[0] <= self.n <= 1.01 * cached[0] + 16:
                # refreshed once the memory has grown by 1%: at 100k rows, a product with the
                # strided rows took 0.09 ms and one with a contiguous copy 0.025 ms
                cached = self._sample = (self.n, np.ascontiguousarray(self._vecs[: self.n: max(1, self.n // n)][:n]))
            return cached[1] @ q
        if key is not None and mask is not None:
            with self._samples_lock:
                hit = self._scope_samples.get(key)
                if hit is not None and hit[:2] == (self.dead, self._generation) and \
                        hit[2] <= self.n <= 1.01 * hit[2] + 16:
                    self._scope_samples.move_to_end(key)
                else:
                    hit = None
            if hit is not None:
                return hit[3] @ q
        rows = np.flatnonzero(self._alive[: self.n] if mask is None else mask)
        if len(rows) > n:
            rows = rows[:: len(rows) // n][:n]
        if key is None or mask is None or len(rows) < n:  # a small scope: its rows are few to gather
            return self._vecs[rows] @ q
        spread = np.ascontiguousarray(self._vecs[rows])
        with self._samples_lock:
            self._scope_samples[key] = (self.dead, self._generation, self.n, spread)
            self._scope_samples.move_to_end(key)
            while len(self._scope_samples) > SCOPE_SAMPLES:
                self._scope_samples.popitem(last=False)
        return spread @ q

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

    def _search_ann(self, q: np.ndarray, k: int, mask: np.ndarray | None,
                    rows: np.ndarray | None) -> list[tuple[int, float]]:
        if mask is None and self.dead == 0 and self._ann.ntotal >= self.n:  # the common case, lean
            import faiss

            want = max(k, RESCORE)
            ef = max(self.ef_search, want)
            params = self._params.get(ef)
            if params is None:
                params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
                params.efSearch = ef
                self._params[ef] = params
            with self._searchers_lock:
                self._searchers += 1
            try:
                with self._ann_lock:
                    _, labels = self._ann.search(q.reshape(1, -1), want, params=params)
                    complete = self._ann.ntotal >= self.n  # no row came after the check
            finally:
                with self._searchers_lock:
                    self._searchers -= 1
            if complete:
                rows = labels[0][labels[0] >= 0]
                exact = self._vecs[rows] @ q  # the index's bfloat16 scores only chose the candidates
                order = np.argsort(-exact, kind="stable")[:k]
                return list(zip(self._ids[rows[order]].tolist(), exact[order].tolist(), strict=True))
        return self._search_ann_batch(q.reshape(1, -1), k, mask, rows)[0]

    def _search_ann_batch(self, queries: np.ndarray, k: int, mask: np.ndarray | None,
                          rows: np.ndarray | None, ef_search: int | None = None) -> list[list[tuple[int, float]]]:
        import faiss

        # a recall's search (no ef_search given) takes RESCORE candidates; a near-duplicate check, k
        fetch = k if ef_search is not None else max(k, RESCORE)
        params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # missing from the stubs
        params.efSearch = max(ef_search or self.ef_search, fetch)
        if mask is not None and rows is not None:
            bitmap = np.packbits(mask, bitorder="little")
            params.sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bitmap))
            # a selective filter needs a wider beam to keep recall
            params.efSearch = int(min(1024, params.efSearch * max(1.0, self.n / max(len(rows), 1)) ** 0.5))
        n = self.n if mask is None else min(self.n, len(mask))
        # the worker waits while a search holds the lock, so a batch (a consolidation's near-duplicate
        # checks) takes every core: 2,048 checks at 300k rows, 57 -> 25 us each on 2 cores
        threads = cores() if len(queries) >= 64 else 1
        with self._searchers_lock:
            self._searchers += 1
        try:
            with self._ann_lock, faiss_threads(threads):  # not while the worker inserts; rows it has
                # not reached are the tail
                scores, labels = self._ann.search(queries, fetch, params=params)  # (n_queries, fetch); -1: none
                start = self._ann.ntotal
        finally:
            with self._searchers_lock:
                self._searchers -= 1
        # exact cosines of the candidates (the index's own scores are bfloat16 approximations)
        found = labels >= 0
        rows = np.where(found, labels, 0)
        scores = np.where(found, np.einsum("qkd,qd->qk", self._vecs[rows], queries), -np.inf).astype(np.float32)
        if start < n:  # rows not in the approximate index yet: searched exactly
            live = (self._alive if mask is None else mask)[start:n]
            tail = np.arange(start, n) if live.all() else start + np.flatnonzero(live)
            if len(tail):
                block = self._vecs[start:n] if len(tail) == n - start else self._vecs[tail]
                extra = queries @ block.T  # (n_queries, len(tail))
                if k == 1 and len(tail) > 1:  # a near-duplicate check: argmax, not a partition
                    best = extra.argmax(axis=1)[:, None]
                    extra, rows_t = np.take_along_axis(extra, best, axis=1), tail[best]
                elif len(tail) > k:
                    part = np.argpartition(-extra, k - 1, axis=1)[:, :k]
                    extra, rows_t = np.take_along_axis(extra, part, axis=1), tail[part]
                else:
                    rows_t = np.broadcast_to(tail, extra.shape)
                scores = np.concatenate([scores, extra], axis=1)
                labels = np.concatenate([labels, rows_t], axis=1)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        scores = np.take_along_axis(scores, order, axis=1)
        ids = self._ids[np.take_along_axis(labels, order, axis=1).clip(min=0)]
        return [[(i, s) for i, s in zip(row_ids, row_s, strict=True) if s > -np.inf]
                for row_ids, row_s in zip(ids.tolist(), scores.tolist(), strict=True)]

    # --- persistence ---------------------------------------------------------------------------

    def save(self, path: Path, background: bool = False) -> int:
        """Write the cache atomically. Rows not saved yet are appended to the rows file
        (``<name>.<random>.f32``; a new one after a compaction) and the HNSW graph goes to a new file
        of its own (``<name>.<random>.hnsw``), both synced first; the archive at ``path`` names them
        and their row count, and replaces the old archive in one rename (temp file, fsync, rename);
        then files no archive names are deleted. A crash at any point leaves the old archive with its
        files intact (appended rows past its count are never read) or the new one.

        ``background=True`` (the periodic saves of a long ingest) saves the rows the HNSW index holds
        at the call: the graph is written (not synced) and the small arrays copied under the index
        lock, and a saver thread appends the rows, syncs and renames meanwhile, so neither the writer
        nor the HNSW worker waits for the disk. Saves run one at a time (a save waits for the one in
        flight); a background save that fails is logged and leaves the old archive, and the next save
        writes everything again. Returns the rows the save holds.

        In a 1M-item ingest the periodic saves had the writer and the worker wait ~9% of the time;
        in the background, 4,994 -> 5,049 items/s (one run each)."""
        self.wait_saved()
        if background and not self._deferred:
            with self._ann_lock:
                snap = self._snapshot(path, self._ann.ntotal if self._ann is not None else self.n)
            self._saver = threading.Thread(target=self._finish_in_background, args=(path, snap),
                                           name="agentmem-save", daemon=True)
            self._saver.start()
            return int(snap["n"])
        with self._ann_lock:
            self._deferred = False
            self._index_pending()
            self._finish(path, self._snapshot(path, self.n))
            return self.n

    def wait_saved(self) -> None:
        """Block until a background save in flight has finished (or failed, logged)."""
        saver = self._saver
        if saver is not None:
            saver.join()
            self._saver = None

    def _snapshot(self, path: Path, n: int) -> dict[str, Any]:
        """What a save of rows [0, n) writes, fixed now (caller holds ``_ann_lock``): copies of the
        per-row arrays, the rows matrix itself (rows below ``self.n`` never change; a compaction
        replaces the matrix and bumps the generation), and the HNSW graph written to a new file."""
        import faiss

        snap: dict[str, Any] = {
            "n": n, "generation": self._generation, "vecs": self._vecs,
            "ids": self._ids[:n].copy(), "alive": self._alive[:n].copy(), "codes": self._codes[:n].copy(),
            "times": self._times[:n].copy(), "interned": [dict(t) for t in self._interned],
            "rows_file": (self._vec_file, self._vec_saved, self._vec_crc), "ann_file": None,
        }
        if self._ann is not None:
            ann_file = path.with_name(f"{path.stem}.{uuid.uuid4().hex[:12]}.hnsw")
            # the graph alone: its vectors are the archive's rows, encoded again on load
            faiss.write_index(self._ann, str(ann_file), faiss.IO_FLAG_SKIP_STORAGE)  # type: ignore[call-overload]
            snap["ann_file"] = ann_file
        return snap

    def _finish_in_background(self, path: Path, snap: dict[str, Any]) -> None:
        try:
            self._finish(path, snap)
        except Exception as exc:  # the archive on disk is the old one, whole; the next save retries
            log.warning("background save of the vector cache %s failed (%s); the next save writes it again",
                        path, exc)
            if snap["ann_file"] is not None:
                snap["ann_file"].unlink(missing_ok=True)

    def _finish(self, path: Path, snap: dict[str, Any]) -> None:
        """Write a snapshot's files, sync them, and rename its archive into place."""
        n = snap["n"]
        tmp = path.with_name(path.name + ".tmp")
        meta: dict[str, Any] = {"format": FORMAT, "dim": self.dim, "n": n, "dead": int(n - snap["alive"].sum()),
                                "interned": snap["interned"]}
        meta["vec_file"], meta["vec_crc32"] = self._append_rows(path, snap["vecs"], n, *snap["rows_file"])
        if snap["ann_file"] is not None:
            with open(snap["ann_file"], "rb+") as fh:
                os.fsync(fh.fileno())
            meta["ann_file"] = snap["ann_file"].name
        arrays: dict[str, np.ndarray] = {
            "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            "ids": snap["ids"], "alive": snap["alive"], "codes": snap["codes"], "times": snap["times"],
        }
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]  # the stub mistypes **kwds
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        with self._ann_lock:
            if snap["generation"] == self._generation:
                self._vec_file, self._vec_saved, self._vec_crc = meta["vec_file"], n, meta["vec_crc32"]
        for old in [*path.parent.glob(f"{path.stem}.*.hnsw"), *path.parent.glob(f"{path.stem}.*.f32")]:
            if old.name not in (meta.get("ann_file"), meta["vec_file"]):
                old.unlink(missing_ok=True)

    def _append_rows(self, path: Path, vecs: np.ndarray, n: int, name: str | None, start: int,
                     crc: int) -> tuple[str, int]:
        """Write rows [start, n) of ``vecs`` to the rows file ``name``, which holds ``start`` saved rows
        with CRC-32 ``crc``, and sync it; return (its name, CRC-32 of its n rows). New rows go after the
        saved ones (cutting off any a crashed save left there); with no file (first save, a compaction,
        a file gone), a new file gets every row."""
        if name is None or start > n or not path.with_name(name).is_file():
            name, start, crc = f"{path.stem}.{uuid.uuid4().hex[:12]}.f32", 0, 0
        row_bytes = self.dim * 4
        with open(path.with_name(name), "r+b" if start else "wb") as fh:
            fh.truncate(start * row_bytes)
            fh.seek(start * row_bytes)
            if n > start:
                block = vecs[start:n].data  # whole rows: contiguous
                fh.write(block)
                crc = zlib.crc32(block, crc)
            fh.flush()
            os.fsync(fh.fileno())
        return name, crc

    @classmethod
    def load(cls, path: Path, dim: int, **options: Any) -> VectorIndex:
        """Read a saved cache; raises ValueError (or OSError) if it is unreadable or for another dim.
        A reader can lose a race with a writer's save (the archive it read names an HNSW file the
        writer has just replaced and deleted): the archive is then read again, at most twice more."""
        for attempt in range(3):
            try:
                return cls._load(path, dim, **options)
            except _NamedFileMissing:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _load(cls, path: Path, dim: int, **options: Any) -> VectorIndex:
        import faiss

        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode())
                if meta.get("format") not in (1, FORMAT) or meta.get("dim") != dim:
                    raise ValueError(f"format {meta.get('format')} / dim {meta.get('dim')} != {FORMAT} / {dim}")
                index = cls(dim, **options)
                n = int(meta["n"])
                # headroom for the adds to come (pages past n are never touched until used): growing
                # from exactly n on the first add after opening copied a 1M-row cache, a 3.5 s stall
                index._grow(n + n // 2)
                index._ids[:n], index._alive[:n], index._codes[:n] = z["ids"], z["alive"], z["codes"]
                index._times[:n] = z["times"] if "times" in z.files else np.nan  # older caches: filled by the caller
                ann = z["ann"] if "ann" in z.files else None  # caches saved before the separate file
                if "vecs" in z.files:  # format 1 before HNSW (after it, the HNSW index held them)
                    index._vecs[:n] = z["vecs"]
        except (zipfile.BadZipFile, KeyError, EOFError, json.JSONDecodeError) as exc:
            raise ValueError(str(exc)) from exc
        index.n, index.dead = n, int(meta["dead"])
        if int((~index._alive[:n]).sum()) != index.dead:
            raise ValueError("tombstone count does not match")
        if "vec_file" in meta:
            index._read_rows(path, str(meta["vec_file"]), n, int(meta["vec_crc32"]))
        elif meta["format"] != 1:
            raise ValueError("the archive names no vector rows file")
        index._interned = [dict(t) for t in meta["interned"]]
        index._row = {int(i): r for r, i in enumerate(index._ids[:n]) if index._alive[r]}
        if ann is not None or "ann_file" in meta:
            if ann is not None:
                index._ann = faiss.deserialize_index(ann)
            else:
                ann_path = _named_file(path, str(meta["ann_file"]), "approximate index file")
                try:
                    index._ann = faiss.read_index(str(ann_path))
                except RuntimeError as exc:
                    if not ann_path.is_file():  # deleted while being read
                        raise _NamedFileMissing(f"approximate index file {meta['ann_file']} is missing") from exc
                    raise
            if index._ann.ntotal != n or index._ann.d != dim:
                raise ValueError(f"approximate index holds {index._ann.ntotal} rows of {index._ann.d} dims, "
                                 f"expected {n} of {dim}")
            if index._ann.storage is None:  # format 2: the graph alone; its vectors from the rows read above
                index._attach_storage(index._ann)
            else:  # format 1: an IndexFlat holds the rows in float32
                storage: Any = faiss.downcast_index(index._ann.storage)
                index._vecs[:n] = faiss.rev_swig_ptr(storage.get_xb(), n * dim).reshape(n, dim)  # one copy
        index._deferred = index._ann is None and n >= index.ann_threshold  # built at the next save, not here
        return index
