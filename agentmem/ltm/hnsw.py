"""The approximate index of the vector cache: a FAISS HNSW graph over its rows, filled on a worker thread.

The graph keeps its own copy of the vectors in bfloat16 (half the bytes of float32, so half the memory
traffic of a walk): it only chooses candidates, whose cosines are then computed from the float32 rows,
so every score a search returns is exact.

Locking protocol, one readers-writer lock (``lock``, :class:`agentmem.rwlock.SharedLock`) for three parties:

- the worker inserts pending rows ``ANN_CHUNK`` at a time holding ``lock`` alone (FAISS releases the
  GIL), and between chunks steps aside while searches run or wait (``searchers``), for at most
  ``STEP_ASIDE`` seconds so that a steady stream of searches does not starve it; it retires when none
  are pending;
- searches share ``lock`` for their FAISS calls, any number at once (FAISS searches only read the
  graph); rows the graph lacks so far (``ntotal`` to the rows' ``n``) are searched exactly, so every
  search sees every row;
- the owner replaces the rows' arrays or the graph (compaction, loading) and snapshots a save holding
  ``lock`` alone. Rows below ``n`` never change in place, so the worker may read them between holds.

A writer faster than insertion waits while more than ``MAX_BACKLOG`` rows are pending; while a thread
is blocked on the worker (``waiting``), the worker uses every core.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from agentmem.rwlock import SharedLock
from agentmem.threads import cores, faiss_threads

ANN_BATCH = 1024  # rows waiting before HNSW insertion starts; fewer wait in an exactly-searched tail
# A search for fewer than this many rows takes this many candidates from HNSW and keeps the k with the
# highest exact cosines: the index ranks by bfloat16 scores, which misorder close neighbours.
RESCORE = 40
ANN_CHUNK = 128  # rows inserted per lock hold on the background thread (a search waits at most that)
MAX_BACKLOG = 2 * ANN_BATCH  # an add waits while more rows than this await the worker (docs/benchmarks.md)
STEP_ASIDE = 0.005  # seconds the worker waits at most between chunks while searches run

_WORKING: weakref.WeakSet[HnswIndex] = weakref.WeakSet()  # indexes whose worker may be running


@atexit.register
def _stop_workers() -> None:
    """At interpreter exit, stop insertion workers between chunks: a daemon thread left inside
    FAISS (OpenMP) while the process tears down aborts it ("terminate called ...")."""
    for index in list(_WORKING):
        index.close()


class RowSource(Protocol):
    """What the HNSW index reads of the rows it indexes (:class:`agentmem.ltm.vector.VectorIndex`)."""

    n: int  # rows [0, n) are valid and never change in place
    dead: int

    @property
    def matrix(self) -> np.ndarray:
        """The float32 rows (the array may be replaced as it grows; read it afresh each time)."""

    @property
    def row_ids(self) -> np.ndarray:
        """The item id of each row."""

    @property
    def live(self) -> np.ndarray:
        """Whether each row is alive (not forgotten)."""


class HnswIndex:
    """A FAISS HNSW graph (inner product, bfloat16 storage) over rows [0, ntotal) of ``rows``."""

    def __init__(self, rows: RowSource, dim: int, *, threshold: int, m: int, ef_construction: int,
                 ef_search: int, background: bool) -> None:
        self.rows = rows
        self.dim = dim
        self.threshold = threshold  # rows before the graph is built
        self.m = m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.background = background  # insertion on a worker thread
        self.index: Any = None  # faiss.IndexHNSWSQ (IndexHNSWFlat if saved by format 1)
        self.deferred = False  # rows past ntotal wait for the owner's next save (see VectorIndex.add)
        self.lock = SharedLock()  # searches share it; insertion and the owner replacing rows or graph hold it alone
        self._params: dict[int, Any] = {}  # efSearch -> faiss.SearchParametersHNSW (unfiltered searches)
        self._searchers = 0  # searches waiting for the lock: the worker steps aside between chunks
        self._searchers_lock = threading.Lock()
        self.waiters = 0  # threads blocked until the worker catches up: it may use every core meanwhile
        self._worker_lock = threading.Lock()  # starting / retiring the worker
        self._worker: threading.Thread | None = None
        self._closing = False

    @property
    def ntotal(self) -> int:
        """Rows the graph holds (0 before it is built)."""
        index = self.index
        return 0 if index is None else int(index.ntotal)

    @property
    def working(self) -> bool:
        """Whether the insertion worker is running."""
        return self._worker is not None

    def pending(self) -> int:
        """Rows the graph lacks (all rows while there is none)."""
        return self.rows.n - self.ntotal

    def added(self) -> None:
        """Rows were appended: insert them once enough wait (on the worker, or here), holding the
        caller back while the worker is too far behind."""
        if self.deferred or self.pending() < (self.threshold if self.index is None else ANN_BATCH):
            return  # HNSW insertions pay off in batches: until then the rows are searched exactly
        if not self.background:
            self.index_pending()
            return
        self._start_worker()
        if self.index is not None and self.pending() > MAX_BACKLOG and self._worker is not None:
            with self.waiting():
                while self.index is not None and self.pending() > MAX_BACKLOG and self._worker is not None:
                    time.sleep(0.001)

    def index_pending(self) -> None:
        """Insert rows the graph lacks (or build it once the size calls for one), here."""
        with self.lock.exclusive():
            n = self.rows.n
            if self.index is not None and self.index.ntotal < n:
                self.index.add(self.rows.matrix[self.index.ntotal : n])
            elif self.index is None and n >= self.threshold:
                self.build()

    def _start_worker(self) -> None:
        with self._worker_lock:
            if self._worker is None and not self._closing:
                _WORKING.add(self)
                self._worker = threading.Thread(target=self._catch_up, name="agentmem-hnsw", daemon=True)
                self._worker.start()

    def _catch_up(self) -> None:
        """Worker: insert pending rows ANN_CHUNK at a time (building the graph first if there is none),
        until none are pending; then retire. Chunks run on this thread alone (OpenMP's thread count is
        a per-thread setting): a writer is busy on the other core meanwhile, and a second OpenMP
        thread spin-waited against it. While a thread is blocked on the worker its core is free:
        chunks then take every core, eight times as many rows at once."""
        import faiss

        threads = 0
        while True:
            wanted = cores() if self.waiters else 1
            if wanted != threads:
                faiss.omp_set_num_threads(wanted)
                threads = wanted
            with self.lock.exclusive():
                n = self.rows.n
                if self.index is None and not self._closing and not self.deferred and n >= self.threshold:
                    self.build(n)  # the rows so far, in one call; the rest follow in chunks
                index = self.index
                if index is not None and not self._closing and not self.deferred and index.ntotal < n:
                    start = index.ntotal
                    chunk = ANN_CHUNK if threads == 1 else 8 * ANN_CHUNK  # a writer waits meanwhile
                    index.add(self.rows.matrix[start : min(n, start + chunk)])
                    busy = True
                else:
                    busy = False
            if busy:
                # a released lock is not handed over: the worker would take it straight back
                until = time.perf_counter() + STEP_ASIDE
                while self._searchers and time.perf_counter() < until:
                    time.sleep(0.0002)
                continue
            with self._worker_lock:
                index = self.index
                if self._closing or self.deferred or index is None or index.ntotal >= self.rows.n:
                    self._worker = None
                    return

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """Count the calling thread as blocked on the worker for the block's duration."""
        with self._searchers_lock:
            self.waiters += 1
        try:
            yield
        finally:
            with self._searchers_lock:
                self.waiters -= 1

    def wait(self) -> None:
        """Block until the worker has inserted every pending row (or retired)."""
        worker = self._worker
        if worker is not None:
            with self.waiting():
                worker.join()

    def close(self) -> None:
        """Stop the worker between chunks; pending rows stay searched exactly."""
        self._closing = True
        self.wait()

    @contextlib.contextmanager
    def searching(self) -> Iterator[None]:
        """Share the lock for a FAISS search, counted so that the worker steps aside."""
        with self._searchers_lock:
            self._searchers += 1
        try:
            with self.lock.shared():
                yield
        finally:
            with self._searchers_lock:
                self._searchers -= 1

    def build(self, rows: int | None = None) -> None:
        """A new graph over the first ``rows`` rows (all by default). Caller holds ``lock``."""
        import faiss

        # bfloat16 storage: faster insertion and search than float32 at the same recall after the
        # exact rescoring (docs/benchmarks.md)
        index = faiss.IndexHNSWSQ(self.dim, faiss.ScalarQuantizer.QT_bf16,  # type: ignore[arg-type]  # stubs
                                  self.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.ef_construction
        index.add(self.rows.matrix[: self.rows.n if rows is None else rows])
        self.index = index

    def write(self, file: Path) -> None:
        """Write the graph alone to ``file`` (its vectors are the rows, encoded again on load)."""
        import faiss

        faiss.write_index(self.index, str(file), faiss.IO_FLAG_SKIP_STORAGE)  # type: ignore[call-overload]

    def adopt(self, index: Any) -> None:
        """Take a graph read from a file. One read without its vectors (format 2) gets the vectors of
        rows [0, ntotal), encoded as its class stores them; one that holds them in float32 (format 1)
        gives them to the rows instead."""
        import faiss

        n = index.ntotal
        if index.storage is not None:  # format 1: an IndexFlat holds the rows in float32
            flat: Any = faiss.downcast_index(index.storage)
            self.rows.matrix[:n] = faiss.rev_swig_ptr(flat.get_xb(), n * self.dim).reshape(n, self.dim)
            self.index = index
            return
        storage: Any  # an index type of FAISS's
        if isinstance(index, faiss.IndexHNSWSQ):
            storage = faiss.IndexScalarQuantizer(self.dim, faiss.ScalarQuantizer.QT_bf16, faiss.METRIC_INNER_PRODUCT)
        elif isinstance(index, faiss.IndexHNSWFlat):
            storage = faiss.IndexFlatIP(self.dim)
        else:
            raise ValueError(f"unexpected approximate index {type(index).__name__}")
        storage.add(self.rows.matrix[:n])
        index.storage = storage
        index.own_fields = True  # the graph frees it
        storage.this.disown()
        self.index = index

    # --- search --------------------------------------------------------------------------------

    def search(self, q: np.ndarray, k: int, mask: np.ndarray | None,
               rows: np.ndarray | None) -> list[tuple[int, float]]:
        """Top-``k`` (id, exact cosine) of one query among ``mask``'s rows (all live rows when None)."""
        n = self.rows.n
        if mask is None and self.rows.dead == 0 and self.ntotal >= n:  # the common case, lean
            import faiss

            want = max(k, RESCORE)
            ef = max(self.ef_search, want)
            params = self._params.get(ef)
            if params is None:
                params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
                params.efSearch = ef
                self._params[ef] = params
            with self.searching():
                _, labels = self.index.search(q.reshape(1, -1), want, params=params)
                complete = self.index.ntotal >= self.rows.n  # no row came after the check
            if complete:
                found = labels[0][labels[0] >= 0]
                exact = self.rows.matrix[found] @ q  # the graph's bfloat16 scores only chose the candidates
                order = np.argsort(-exact, kind="stable")[:k]
                return list(zip(self.rows.row_ids[found[order]].tolist(), exact[order].tolist(), strict=True))
        return self.search_batch(q.reshape(1, -1), k, mask, rows)[0]

    def search_batch(self, queries: np.ndarray, k: int, mask: np.ndarray | None,
                     rows: np.ndarray | None, ef_search: int | None = None) -> list[list[tuple[int, float]]]:
        """Top-``k`` (id, exact cosine) per query among ``mask``'s rows, ``rows`` being its nonzero
        positions; rows the graph lacks are searched exactly. ``ef_search`` overrides the beam (a
        near-duplicate check needs less than a recall)."""
        import faiss

        # a recall's search (no ef_search given) takes RESCORE candidates; a near-duplicate check, k
        fetch = k if ef_search is not None else max(k, RESCORE)
        params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # missing from the stubs
        params.efSearch = max(ef_search or self.ef_search, fetch)
        total = self.rows.n
        if mask is not None and rows is not None:
            bitmap = np.packbits(mask, bitorder="little")
            params.sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bitmap))
            # a selective filter needs a wider beam to keep recall
            params.efSearch = int(min(1024, params.efSearch * max(1.0, total / max(len(rows), 1)) ** 0.5))
        n = total if mask is None else min(total, len(mask))
        # the worker waits while a search holds the lock, so a batch (a consolidation's near-duplicate
        # checks) takes every core
        threads = cores() if len(queries) >= 64 else 1
        with self.searching(), faiss_threads(threads):
            scores, labels = self.index.search(queries, fetch, params=params)  # (n_queries, fetch); -1: none
            start = self.index.ntotal
        matrix, ids = self.rows.matrix, self.rows.row_ids
        # exact cosines of the candidates (the graph's own scores are bfloat16 approximations)
        found = labels >= 0
        picked = np.where(found, labels, 0)
        scores = np.where(found, np.einsum("qkd,qd->qk", matrix[picked], queries), -np.inf).astype(np.float32)
        if start < n:  # rows not in the graph yet: searched exactly
            live = (self.rows.live if mask is None else mask)[start:n]
            tail = np.arange(start, n) if live.all() else start + np.flatnonzero(live)
            if len(tail):
                block = matrix[start:n] if len(tail) == n - start else matrix[tail]
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
        top = ids[np.take_along_axis(labels, order, axis=1).clip(min=0)]
        return [[(i, s) for i, s in zip(row_ids, row_s, strict=True) if s > -np.inf]
                for row_ids, row_s in zip(top.tolist(), scores.tolist(), strict=True)]
