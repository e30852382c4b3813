"""``Memory``: the public face of agentmem. It owns the directory's writer lock, short-term memory,
the embedder and a :class:`~agentmem.ltm.long_term.LongTermMemory` (the journal and the caches kept
in step with it). Every write commits to the journal before it returns."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agentmem import consolidation, validate
from agentmem import recall as retrieval
from agentmem.config import Config, memory_path
from agentmem.consolidation import ConsolidationReport
from agentmem.errors import (
    EmbedderMismatchError,
    InvalidInputError,
    MemoryClosedError,
    MemoryPathError,
    NotFoundError,
    ReadOnlyError,
)
from agentmem.ltm.graph import KnowledgeGraph
from agentmem.ltm.journal import Journal
from agentmem.ltm.lock import WriterLock
from agentmem.ltm.long_term import JOURNAL_FILE, LongTermMemory, progress_bar
from agentmem.ltm.passages import PassageIndex, with_passages
from agentmem.ltm.vector import VectorIndex
from agentmem.ltm.weights import WeightStore
from agentmem.plugins import get_embedder, hook
from agentmem.recall.hits import pick_hits
from agentmem.rwlock import SharedLock
from agentmem.statement import content_hash
from agentmem.stm import ShortTermMemory
from agentmem.threads import single_blas_thread, single_faiss_thread
from agentmem.types import Hit, Item, LogEntry

log = logging.getLogger("agentmem")


class Memory:
    """A memory directory: ``Memory(path)`` opens (or creates) it for writing, one process at a time.

    ``read_only=True`` opens it beside a writer (no lock; sees items committed before opening for vector
    search, and all committed items for lexical search). Options override :class:`agentmem.Config`.
    """

    def __init__(self, path: str | Path | None = None, *, config: Config | None = None,
                 read_only: bool = False, **options: Any) -> None:
        self.path = memory_path(path)
        self.config = (config or Config()).updated(**options)
        self.read_only = read_only
        self._lock = SharedLock("a recall (e.g. its recall_candidates hook) cannot write to the memory it reads: "
                                "write after recall returns")  # recalls share it, writes hold it alone
        self._uses_lock = threading.Lock()  # recalls count uses side by side
        self._closed = False
        self._uses: Counter[int] = Counter()  # recalls per item, until written
        self._writer: WriterLock | None = None
        self._open_dir()
        try:
            self._open_stores()
        except BaseException:
            self._release()
            raise

    # --- opening and closing ---------------------------------------------------------------------

    def _open_dir(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise MemoryPathError(f"{self.path} is a file, not a memory directory; pass a directory path")
        if self.read_only:
            if not (self.path / JOURNAL_FILE).exists():
                raise MemoryPathError(f"{self.path} holds no memory to open read-only; create it first")
            return
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MemoryPathError(f"cannot create memory directory {self.path}: {exc}") from exc
        self._writer = WriterLock(self.path / "LOCK")
        self._writer.acquire(self.config.lock_timeout)

    def _open_stores(self) -> None:
        self.ltm = LongTermMemory(self.path, self.config, self.read_only)
        self.embedder_name, self.dim = self.ltm.embedder(self.config.embedder)
        self.stm = ShortTermMemory(self.dim, self.config.stm_items, self.config.stm_bytes, lexicon=True)
        self.ltm.open_caches(self.dim, self._embed, lambda: getattr(self.embedder, "passage_chars", None))
        self._stores = retrieval.Stores(self.config, self.ltm.journal, self.ltm.vector, self.ltm.passages, self.stm,
                                        self.ltm.graph, self.dim)  # what recall reads
        items, vecs = self.ltm.short_term()
        if items:
            self.stm.add(items, vecs)

    # the stores, as plugins and tools read them
    @property
    def journal(self) -> Journal:
        return self.ltm.journal

    @property
    def vector(self) -> VectorIndex:
        return self.ltm.vector

    @property
    def passages(self) -> PassageIndex:
        return self.ltm.passages

    @property
    def graph(self) -> KnowledgeGraph:
        return self.ltm.graph

    @property
    def weights(self) -> WeightStore:
        return self.ltm.weights

    @property
    def notices(self) -> list[str]:
        """What opening found and repaired, for humans."""
        return self.ltm.notices

    @property
    def lag(self) -> list[str]:
        """Read-only: how far the saved vector cache was behind the journal."""
        return self.ltm.lag

    @property
    def embedder(self) -> Any:
        return get_embedder(self.embedder_name)

    def close(self) -> None:
        """Flush caches and release the write lock. Safe to call twice."""
        with self._lock.exclusive():
            if self._closed:
                return
            try:
                self._flush_uses()
                self.ltm.close()
            finally:
                self._closed = True
                self._release()

    def _release(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Memory({str(self.path)!r}, embedder={self.embedder_name!r})"

    def _check_open(self, write: bool = False) -> None:
        if self._closed:
            raise MemoryClosedError(f"memory {self.path} is closed; open it again with agentmem.Memory(path)")
        if write and self.read_only:
            raise ReadOnlyError(f"memory {self.path} was opened read_only=True; open it without to write")

    def save_index(self) -> None:
        """Write the vector cache to disk now (it is also written on close)."""
        self.ltm.save()

    # --- writing ---------------------------------------------------------------------------------

    def remember(self, text: str, metadata: dict[str, Any] | None = None, scope: dict[str, str] | None = None,
                 *, time: Any = None, embedding: Any = None, activations: dict[str, Any] | None = None) -> int:
        """Store one text; return its id once it is durable. ``time`` is when the remembered event
        happened (number, datetime or ISO string); ``embedding`` skips the embedder (shape (dim,)).
        A text longer than the embedder reads whole is also embedded in passages (see
        :mod:`agentmem.ltm.passages`), with or without ``embedding``, so all of it is found by meaning."""
        return self.remember_many([text], [metadata] if metadata is not None else None, scope,
                                  times=[time], embeddings=None if embedding is None else [embedding],
                                  activations=[activations] if activations else None, progress=False)[0]

    def remember_many(self, texts: Sequence[str], metadatas: Sequence[dict[str, Any] | None] | None = None,
                      scope: dict[str, str] | None = None, *, times: Sequence[Any] | None = None,
                      embeddings: Any = None, activations: Sequence[dict[str, Any] | None] | None = None,
                      batch_size: int = 2048, progress: bool | None = None) -> list[int]:
        """Store many texts in one scope, embedding in batches; ids in input order. Everything is
        validated before anything is stored. A progress bar shows for large inputs (or ``progress=True``).
        Each batch of ``batch_size`` is one journal transaction and, once STM is full, one
        consolidation (see docs/benchmarks.md for the batch size chosen)."""
        self._check_open(write=True)
        if isinstance(texts, str) or int(batch_size) < 1:
            raise validate.InvalidInputError("texts must be a list of strings (for one text use remember()) "
                                             "and batch_size >= 1")
        texts = [validate.text(t) for t in texts]
        n = len(texts)
        metas = [validate.metadata(m) for m in (metadatas if metadatas is not None else [None] * n)]
        stamps = [validate.when(t) for t in (times if times is not None else [None] * n)]
        if len(metas) != n or len(stamps) != n or (activations is not None and len(activations) != n):
            raise validate.InvalidInputError("texts, metadatas, times and activations must have equal lengths")
        scope_ = validate.scope(scope)
        vecs = None if embeddings is None else validate.vectors(embeddings, n, self.dim)
        bar = progress_bar(n, progress, "remember")
        if n >= batch_size:
            with self._lock.exclusive():
                self.vector.reserve(n)  # room for every row this call may consolidate
        ids: list[int] = []
        for start in range(0, n, batch_size):
            end = min(n, start + batch_size)
            batch_vecs = vecs[start:end] if vecs is not None else self._embed(texts[start:end])
            now = time.time()
            rows = [{"text": texts[j], "metadata": metas[j][1], "scope": scope_, "created_at": now,
                     "event_time": stamps[j], "content_hash": content_hash(texts[j]),
                     "embedding": batch_vecs[j - start]} for j in range(start, end)]
            size = getattr(self.embedder, "passage_chars", None)
            # a writer on a patched-back schema (tests) stores none
            long = with_passages(rows, size, self._embed) if size and self.journal.has_grams else []
            with self._lock.exclusive():
                self._check_open(write=True)
                new_ids = self.journal.insert_items(rows)
                if long:
                    self.passages.add(*self.journal.passages.read([new_ids[j] for j in long]))
                items = [Item(i, texts[j], metas[j][0], dict(scope_), now, stamps[j])
                         for i, j in zip(new_ids, range(start, end), strict=True)]
                self.stm.add(items, batch_vecs, list(activations[start:end]) if activations else None)
                if self.stm.full:
                    self._consolidate()
            ids.extend(new_ids)
            if bar is not None:
                bar.update(end - start)
        if bar is not None:
            bar.close()
        return ids

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        vecs = np.asarray(self.embedder.embed_batch(list(texts)), dtype=np.float32)
        if vecs.shape != (len(texts), self.dim):
            raise EmbedderMismatchError(f"embedder {self.embedder_name!r} returned shape {vecs.shape}, "
                                        f"expected ({len(texts)}, {self.dim})")
        return vecs

    def flush(self) -> None:
        """Finish background work: HNSW insertion of the rows consolidated so far (they are
        searchable before it, exactly), a save of the vector cache in flight, and the journal's
        write-ahead log (checkpointed into the database and emptied). Writes are durable without it."""
        self._check_open()
        self.ltm.wait()
        with self._lock.exclusive():
            self.journal.checkpoint()

    def consolidate(self) -> ConsolidationReport:
        """Move everything in STM into long-term memory now (dedup, score, facts)."""
        self._check_open(write=True)
        with self._lock.exclusive():
            return self._consolidate()

    def _consolidate(self) -> ConsolidationReport:
        self._flush_uses()
        if self.vector.has_ann:
            # HNSW insertion runs on a worker thread meanwhile (on one core, see HnswIndex._catch_up);
            # second BLAS and FAISS threads here would spin-wait against it (docs/benchmarks.md).
            # Below the HNSW size there is no worker, and two BLAS threads are faster.
            with single_blas_thread(), single_faiss_thread():
                report = self._consolidate_stm()
        else:
            report = self._consolidate_stm()
        self.journal.text.maybe_optimize()
        return report

    def _consolidate_stm(self) -> ConsolidationReport:
        """Plan the consolidation of everything in STM, apply it to LTM, drop what it consumed from
        STM, then run the forget policy and tell plugins (``on_consolidate``)."""
        start = time.perf_counter()
        report = ConsolidationReport()
        plan = consolidation.plan(self.stm, self.ltm, self.config)
        if plan is None:
            return report
        self.ltm.apply(plan)
        self.stm.remove(plan.consumed())
        self.ltm.save_if_due()
        report.promoted = [i.id for i in plan.promote]
        report.merged = {dup.id: canon for dup, canon, _ in plan.merges}
        report.facts = len(plan.facts)
        report.forgotten = self.ltm.forget_policy(self.config.ltm_max_items, self.config.half_life_days)
        report.seconds = time.perf_counter() - start
        hook().on_consolidate(memory=self, items=plan.promote)
        return report

    def forget(self, item_id: int) -> list[int]:
        """Remove an item everywhere (journal, lexical index, vectors, STM, graph links), durably.
        Items merged into it (or it into) go too: forgetting a memory forgets its duplicates.
        Returns every id removed."""
        self._check_open(write=True)
        with self._lock.exclusive():
            item_id = validate.item_id(item_id)
            canonical = self.journal.canonical(item_id)
            if canonical is None:
                raise NotFoundError(f"no item {item_id} in {self.path} (already forgotten?)")
            group = [canonical, *self.journal.merged_into(canonical)]
            self._forget_ids(group, reason="forget")
            return sorted(set(group) | {item_id})

    def forget_many(self, item_ids: Sequence[int]) -> list[int]:
        """Forget several items, all or none: every id is checked first, and if any is unknown a
        NotFoundError names them all and nothing is forgotten. Returns every id removed."""
        self._check_open(write=True)
        if isinstance(item_ids, str | bytes) or not isinstance(item_ids, Iterable):
            raise InvalidInputError(f"forget_many takes a list of ids, got {type(item_ids).__name__}; "
                                    "use forget(id) for one")
        with self._lock.exclusive():
            wanted = {validate.item_id(i) for i in item_ids}
            canonical = {i: self.journal.canonical(i) for i in wanted}
            missing = sorted(i for i, c in canonical.items() if c is None)
            if missing:
                raise NotFoundError(f"no item{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} in "
                                    f"{self.path} (already forgotten?); nothing was forgotten: pass only ids "
                                    "that exist")
            removed = set(wanted)
            for c in {c for c in canonical.values() if c is not None}:  # every one is, by now
                removed.update([c, *self.journal.merged_into(c)])
            if removed:
                self._forget_ids(sorted(removed), reason="forget")  # one transaction: all or none
            return sorted(removed)

    def _forget_ids(self, ids: list[int], reason: str) -> None:
        self.ltm.forget(ids, reason)
        self.stm.remove(ids)

    # --- reading ---------------------------------------------------------------------------------

    def get(self, item_id: int) -> Item:
        """The item stored under ``item_id``, as it was remembered. An item merged into another
        keeps its own text, metadata and times, with ``merged_into`` naming the item it lives under."""
        self._check_open()
        item_id = validate.item_id(item_id)
        canonical = self.journal.canonical(item_id)
        if canonical is not None and canonical != item_id:
            item = self.journal.merged_item(item_id)
        else:
            item = None if canonical is None else self.journal.get_items([canonical]).get(canonical)
        if item is None:
            raise NotFoundError(f"no item {item_id} in {self.path}")
        return item

    def recall(self, query: str, k: int = 10, scope: dict[str, str] | None = None,
               filters: dict[str, Any] | None = None, since: Any = None, until: Any = None, *,
               embedding: Any = None) -> list[Hit]:
        """The ``k`` items most relevant to ``query`` within ``scope``, fusing STM, vector, lexical and
        graph evidence. ``filters`` are metadata equalities; ``since``/``until`` bound event time."""
        self._check_open()
        query = validate.text(query)
        k = validate.k(k)
        scope_ = validate.scope(scope)
        filters = validate.filters(filters)
        t0, t1 = validate.when(since, "since"), validate.when(until, "until", upper=True)
        qvec = (validate.vectors(embedding, 1, self.dim) if embedding is not None else self._embed([query]))[0]
        with self._lock.shared():
            self._check_open()
            q = retrieval.Context(self._stores, retrieval.Query(query, qvec, k, scope_, filters, t0, t1),
                                  self._candidates)
            hits = pick_hits(q, retrieval.search(q), self.journal.get_items, self.stm.__contains__)
            with self._uses_lock:
                self._uses.update(hit.id for hit in hits)
        return hits

    def _candidates(self, text: str, scope: dict[str, str], k: int) -> list[tuple[str, list[int]]]:
        """Each ``recall_candidates`` plugin's ranked ids (the hook receives this memory)."""
        return [(impl.plugin_name, list(impl.function(memory=self, query=text, scope=scope, k=k) or []))
                for impl in hook().recall_candidates.get_hookimpls()]

    def search_vectors(self, vectors: Any, k: int = 10, scope: dict[str, str] | None = None,
                       filters: dict[str, Any] | None = None, since: Any = None, until: Any = None
                       ) -> list[list[tuple[int, float]]]:
        """For each query vector (one (dim,) or many (n, dim); normalised here), the ``k`` items of
        ``scope`` (and filters, time bounds) nearest by cosine, as (id, cosine) best first, long- and
        short-term alike. No text, no fusion: what a model plugin needs to use memory as a datastore
        (nearest training examples, translation pairs); :meth:`get_many` reads the items."""
        self._check_open()
        k = validate.k(k)
        scope_ = validate.scope(scope)
        filters = validate.filters(filters)
        t0, t1 = validate.when(since, "since"), validate.when(until, "until", upper=True)
        queries = validate.query_vectors(vectors, self.dim)
        with self._lock.shared():
            self._check_open()
            return retrieval.nearest_vectors(self._stores, queries, k, scope_, filters, t0, t1)

    def items(self, scope: dict[str, str] | None = None, limit: int = 100, before: int | None = None,
              filters: dict[str, Any] | None = None) -> list[Item]:
        """The items of ``scope`` (passing the metadata ``filters``), newest first: ``limit`` (1 to 10,000)
        with ids below ``before`` (paging)."""
        self._check_open()
        before = None if before is None else validate.item_id(before)
        return self.journal.scope_items(validate.scope(scope), validate.k(limit, "limit"), before,
                                        validate.filters(filters))

    def history(self, limit: int = 50, before: int | None = None) -> list[LogEntry]:
        """Consolidations and forgets as the journal logged them, newest first (ids below ``before``: paging)."""
        self._check_open()
        return self.ltm.history(validate.k(limit, "limit"), None if before is None else validate.item_id(before))

    def get_many(self, ids: Sequence[int]) -> dict[int, Item]:
        """The items stored under ``ids`` (those forgotten, merged away or never stored are left out),
        in one read: what :meth:`search_vectors` found."""
        self._check_open()
        wanted = [validate.item_id(i) for i in ids]
        return self.journal.get_items(wanted)

    def embeddings(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """The stored embedding (unit float32) of each of ``ids`` that exists."""
        self._check_open()
        found, vecs, _ = self.journal.vectors([validate.item_id(i) for i in ids])
        return {int(i): vecs[j] for j, i in enumerate(found.tolist())}

    def recall_many(self, queries: Sequence[str], k: int = 10, scope: dict[str, str] | None = None,
                    filters: dict[str, Any] | None = None, since: Any = None, until: Any = None, *,
                    embeddings: Any = None) -> list[list[Hit]]:
        """``recall`` for many queries; the queries are embedded in one batch."""
        texts = [validate.text(q) for q in queries]
        vecs = validate.vectors(embeddings, len(texts), self.dim) if embeddings is not None else self._embed(texts)
        return [self.recall(q, k, scope, filters, since, until, embedding=v) for q, v in zip(texts, vecs, strict=True)]

    def __iter__(self) -> Iterator[Item]:
        """Every stored item, in id order."""
        self._check_open()
        return self.journal.iter_items()

    def __len__(self) -> int:
        self._check_open()
        return self.journal.counts()["items"]

    def stats(self) -> dict[str, Any]:
        """Counts and sizes of every store."""
        self._check_open()
        with self._lock.shared():
            counts = self.journal.counts()
            disk = sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
            return {"path": str(self.path), "embedder": self.embedder_name, "dim": self.dim, **counts,
                "stm_bytes": self.stm.nbytes, "stm_limit_items": self.config.stm_items,
                "vectors": len(self.vector), "passages": len(self.passages),
                "vector_store": self.config.vector_store, "vector_index": "hnsw" if self.vector.has_ann else "exact",
                **{f"graph_{k}": v for k, v in self.graph.stats().items()},
                "weights": self.weights.names(), "disk_bytes": disk, "read_only": self.read_only}

    def _flush_uses(self) -> None:
        if self._uses and not self.read_only:
            with self._uses_lock:
                uses, self._uses = self._uses, Counter()
            self.journal.add_uses(uses)
