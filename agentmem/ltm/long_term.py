"""``LongTermMemory``: the journal and the caches derived from it, kept in step in one place.

The journal is the source of truth; the vector cache, the passages, the knowledge graph and the
weight files follow it. Opening brings each cache in step (rebuilt when unusable, caught up when
behind, strays of interrupted writes swept); every change (a consolidation plan, a forget) goes
through :meth:`LongTermMemory.apply` or :meth:`LongTermMemory.forget`, which commit to the journal
and update every cache in the same order each time. Callers hold the owning ``Memory``'s lock.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agentmem.config import Config
from agentmem.errors import EmbedderMismatchError, MemoryPathError, NotFoundError
from agentmem.ltm.graph import KnowledgeGraph
from agentmem.ltm.journal import Journal
from agentmem.ltm.passages import PassageIndex, split
from agentmem.ltm.vector import VectorIndex
from agentmem.ltm.weights import WeightStore
from agentmem.plugins import get, get_embedder, registry
from agentmem.types import LogEntry

if TYPE_CHECKING:
    from agentmem.consolidation import ConsolidationPlan
    from agentmem.types import Item

log = logging.getLogger("agentmem")
JOURNAL_FILE = "journal.sqlite3"
VECTOR_FILE = "vectors.npz"
SAVE_EVERY = 50_000  # rows consolidated between saves of the vector cache during long ingests


class LongTermMemory:
    """The long-term stores of one memory directory. Opened in two steps, because the embedder (and
    so the vectors' dimension) is recorded in the journal: the constructor opens the journal,
    :meth:`open_caches` the rest."""

    def __init__(self, path: Path, config: Config, read_only: bool) -> None:
        self.path = path
        self.config = config
        self.read_only = read_only
        self.notices: list[str] = []  # what opening found and repaired, for humans
        self.lag: list[str] = []  # read-only: how far the saved vector cache was behind the journal
        self.unsaved = 0  # vector rows changed since the cache file was written (> 0: close saves)
        journal_cls = get_store("journal", "sqlite")
        try:
            self.journal: Journal = journal_cls(
                path / JOURNAL_FILE, read_only=read_only,
                synchronous="FULL" if config.durability == "full" else "NORMAL")
        except sqlite3.OperationalError as exc:  # unreadable or unwritable files, not damage
            if "locked" in str(exc):  # busy beyond the timeout: not the files' fault
                raise
            raise MemoryPathError(f"cannot open the journal {path / JOURNAL_FILE} ({exc}); make {path} "
                                  "and its files readable and writable by this user") from exc

    def embedder(self, wanted: str | None) -> tuple[str, int]:
        """(name, dimension) of the embedder this memory uses: the one recorded in the journal (a
        different ``wanted`` is an EmbedderMismatchError), else ``wanted`` or the default, recorded now
        by a writer. Building the embedder is needed only to learn a new memory's dimension."""
        stored, stored_dim = self.journal.get_meta("embedder"), self.journal.get_meta("dim")
        wanted = wanted or stored or "minilm"
        if stored is not None and wanted != stored:
            raise EmbedderMismatchError(
                f"{self.path} was built with embedder {stored!r} ({stored_dim} dims), not {wanted!r}; open it "
                f"with embedder={stored!r} or use a new directory for {wanted!r}", stored=stored, wanted=wanted)
        if stored_dim is not None:
            return wanted, int(stored_dim)
        get("embedders", wanted)  # fail fast on an unknown name
        dim = int(get_embedder(wanted).dim)
        if not self.read_only:
            self.journal.set_meta("embedder", wanted)
            self.journal.set_meta("dim", str(dim))
        return wanted, dim

    def open_caches(self, dim: int, embed: Callable[[Sequence[str]], np.ndarray],
                    passage_chars: Callable[[], int | None]) -> None:
        """Open the vector cache, passages, graph and weights in step with the journal. ``embed`` and
        ``passage_chars`` (asked only when a journal from before passages needs them) give the
        passages of long items that lack them."""
        self.dim = dim
        self.vector = self._open_vectors()
        self.passages = self._open_passages(embed, passage_chars)
        graph_cls = get_store("graph", self.config.graph_store)
        self.graph: KnowledgeGraph = graph_cls(self.journal, writable=not self.read_only)
        self.weights = WeightStore(self.journal, self.path / "weights")
        self._sweep()

    # --- opening ------------------------------------------------------------------------------

    def _vector_options(self) -> dict[str, Any]:
        return {"ann_threshold": self.config.ann_threshold, "ef_search": self.config.ef_search}

    def _open_vectors(self) -> VectorIndex:
        """Load the vector cache and bring it in step with the journal, rebuilding it if unusable."""
        cls = get_store("vector", self.config.vector_store)
        file = self.path / VECTOR_FILE
        index = None
        if file.exists():
            try:
                index = cls.load(file, self.dim, **self._vector_options())
            except (ValueError, OSError, RuntimeError) as exc:
                why = "not a vector cache archive" if "pickle" in str(exc) else str(exc)  # numpy's hint misleads
                self.notice(f"vector cache {file.name} is unreadable ({why}); rebuilding it from the journal")
        elif self.journal.counts()["ltm"]:
            self._behind(f"vector cache {file.name} is missing; rebuilding it from the journal")
        if index is not None and not self._cache_matches(index):
            self.notice(f"vector cache {file.name} holds vectors that differ from the journal (copied from "
                        "another memory?); rebuilding it from the journal")
            index = None
        rebuilt = index is None
        if index is None:
            index = cls(self.dim, **self._vector_options())
        journal_ids = self.journal.ids(tier="ltm")
        cached = index.ids()
        stale = np.setdiff1d(cached, journal_ids, assume_unique=True)
        missing = np.setdiff1d(journal_ids, cached, assume_unique=True)
        if len(stale):
            index.remove(stale.tolist())
        if len(missing):
            ids, vecs, scopes = self.journal.vectors(missing.tolist())
            time_of = dict(zip(*self.journal.times(ids.tolist()), strict=True))
            # searched exactly until the next save
            index.add(ids, vecs, scopes, times=[time_of[i] for i in ids.tolist()], defer_ann=True)
        unknown = index.unknown_times()  # a cache saved before item times were kept
        if len(unknown):
            index.set_times(*self.journal.times(unknown.tolist()))
        if (len(stale) or len(missing)) and not rebuilt:
            self._behind(f"vector cache was behind the journal: added {len(missing)}, dropped {len(stale)}")
        self.unsaved = len(stale) + len(missing) + int(rebuilt and file.exists())
        return index

    def _open_passages(self, embed: Callable[[Sequence[str]], np.ndarray],
                       passage_chars: Callable[[], int | None]) -> PassageIndex:
        """The passages of long texts, from the journal. A writer of a journal from before passages
        first embeds those its long items lack (once: the window size is then recorded in the meta,
        and later opens do not even build the embedder)."""
        index = PassageIndex(self.dim)
        todo_once = not self.read_only and self.journal.has_grams and self.journal.get_meta("passage_chars") is None
        size = passage_chars() if todo_once else None
        if todo_once and not size:
            self.journal.set_meta("passage_chars", "0")  # this embedder reads any length whole
        if size:
            todo = self.journal.passages.missing(size)
            bar = progress_bar(len(todo), None if len(todo) > 50 else False, "passages")
            for item_id, text in todo:
                spans = split(text, size)
                vecs = embed([text[a:b] for a, b in spans])
                self.journal.passages.add([(item_id, a, b, v) for (a, b), v in zip(spans, vecs, strict=True)])
                if bar is not None:
                    bar.update(1)
            if bar is not None:
                bar.close()
            self.journal.set_meta("passage_chars", str(size))
        index.add(*self.journal.passages.read())
        return index

    def _cache_matches(self, index: VectorIndex, sample: int = 64) -> bool:
        """Whether a spread sample of cached vectors equals the journal's (ids are never reused, so an
        id's vector never changes: a difference means the file belongs to another journal)."""
        cached = index.ids()
        picked = cached[:: max(1, len(cached) // sample)][:sample].tolist()
        ids, want, _ = self.journal.vectors(picked)
        if not len(ids):
            return True
        return bool(np.allclose(index.vectors_of(ids.tolist()), want, atol=1e-6))

    def _sweep(self) -> None:
        """Writers delete what interrupted writes left (temporary files, weight versions never
        committed); everyone reports weight files that are missing or have the wrong size."""
        if not self.read_only:
            for stray in self.strays():
                stray.unlink()
                self.notice(f"removed {stray.relative_to(self.path)}, left by an interrupted write")
        for problem in self.weights.verify(quick=True):
            self.notice(f"{problem}; loading it raises CorruptionError: restore the file from a backup or "
                        "roll back to another version")

    def strays(self) -> list[Path]:
        """Files interrupted writes left behind (a vector cache never renamed into place, weight
        versions never committed)."""
        return [p for p in [self.path / (VECTOR_FILE + ".tmp"), *self.weights.strays()] if p.exists()]

    def notice(self, message: str) -> None:
        """Something opening found and repaired: logged as a warning and kept in ``notices``."""
        log.warning("%s: %s", self.path, message)
        self.notices.append(message)

    def _behind(self, message: str) -> None:
        """A saved cache behind the journal. Normal for a reader beside a live writer, which saves the
        cache on close and every ``SAVE_EVERY`` new vectors: logged at info, kept in ``lag`` (for
        ``doctor``), not a notice. A writer finding it warns: the last writer did not close."""
        if self.read_only:
            log.info("%s: %s", self.path, message)
            self.lag.append(message)
        else:
            self.notice(message)

    def short_term(self) -> tuple[list[Item], np.ndarray]:
        """The items the journal holds in the STM tier, in id order, with their embeddings row for
        row: what a memory's short-term memory starts with when it opens."""
        items = list(self.journal.iter_items(tier="stm"))
        if not items:
            return [], np.zeros((0, self.dim), dtype=np.float32)
        ids, vecs, _ = self.journal.vectors([i.id for i in items])
        order = {int(i): r for r, i in enumerate(ids)}
        return items, vecs[[order[i.id] for i in items]]

    # --- changes ------------------------------------------------------------------------------

    def apply(self, plan: ConsolidationPlan) -> None:
        """Commit a consolidation plan to the journal (one transaction), then update the caches."""
        promote = plan.promote
        ids = [i.id for i in promote]
        if promote:
            # into the vector cache before the commit, so that the HNSW worker inserts them on another
            # core while the journal indexes their text; taken out again if the commit fails. No
            # reader sees the gap: recall holds the memory's lock, which the caller holds.
            self.vector.add(np.array(ids, dtype=np.int64), plan.vectors, [i.scope for i in promote],
                            times=[i.created_at if i.event_time is None else i.event_time for i in promote])
        try:
            fact_rows = self.journal.apply_consolidation([(i, plan.importance[i.id]) for i in promote],
                                                         plan.merges, plan.facts)
        except BaseException:
            self.vector.remove(ids)
            raise
        self.unsaved += len(promote)
        self.passages.remove_items([d.id for d, _, _ in plan.merges])  # the journal deleted them with the items
        for dup, canonical, _ in plan.merges:
            self.graph.relink(dup.id, canonical)
        self.graph.add_rows(fact_rows)

    def save_if_due(self) -> None:
        """Save the vector cache in the background once SAVE_EVERY rows changed since the last save:
        bounds the rows a crash leaves to add back from the journal at the next open."""
        if self.unsaved >= SAVE_EVERY:
            saved = self.vector.save(self.path / VECTOR_FILE, background=True)
            self.unsaved = self.vector.n - saved  # rows HNSW did not hold yet: close saves them

    def forget_policy(self, limit: int | None, half_life_days: float) -> list[int]:
        """Forget the long-term items beyond the ``limit`` most important of each scope (``ltm_max_items``;
        None: keep all); returns their ids."""
        doomed = [] if limit is None else self.journal.least_important(limit, half_life_days)
        if doomed:
            self.forget(doomed, reason=f"policy: ltm_max_items={limit}")
        return doomed

    def history(self, limit: int, before: int | None = None) -> list[LogEntry]:
        """The journal's log of consolidations and forgets, newest first: ``limit`` entries, ids below ``before``."""
        with self.journal.reading() as conn:
            rows = conn.execute("SELECT id, at, action, detail FROM log WHERE id < ? AND action IN "
                                "('consolidate', 'forget') ORDER BY id DESC LIMIT ?",
                                (before if before is not None else 1 << 62, limit)).fetchall()
        out = []
        for i, at, action, detail in rows:
            d = json.loads(detail)
            if action == "forget":  # a policy may forget thousands at once
                d = {"count": len(d.get("ids", [])), "ids": d.get("ids", [])[:100], "reason": d.get("reason")}
            out.append(LogEntry(int(i), float(at), action, d))
        return out

    def forget(self, ids: list[int], reason: str) -> None:
        """Remove items from the journal (one transaction, logged with ``reason``) and every cache."""
        self.journal.delete_items(ids, reason)
        self.vector.remove(ids)
        self.passages.remove_items(ids)
        self.unsaved += len(ids)
        self.graph.remove_items(ids)

    # --- saving and closing -------------------------------------------------------------------

    def save(self) -> None:
        """Write the vector cache to disk now."""
        self.vector.save(self.path / VECTOR_FILE)
        self.unsaved = 0

    def wait(self) -> None:
        """Wait for HNSW insertion of the rows added so far and for a background save in flight."""
        self.vector.wait()
        self.vector.wait_saved()

    def close(self) -> None:
        """Save the vector cache if it changed (a writer), then close every store."""
        if not self.read_only and self.unsaved:
            self.save()
        self.vector.close()
        self.passages.close()
        self.journal.close()


def get_store(kind: str, name: str) -> Any:
    """The factory of the registered ``kind`` store ``name`` (see agentmem.ltm.protocols); a typed
    error listing the registered ones when there is none of that kind and name."""
    table = registry()["stores"]
    of_kind = sorted(n for n, e in table.items() if e.options.get("kind") == kind)
    entry = table.get(name)
    if entry is None or entry.options.get("kind") != kind:
        what = f"no {kind} store named {name!r}" if entry is None else \
            f"store {name!r} is a {entry.options.get('kind')} store, not a {kind} store"
        raise NotFoundError(f"{what}; registered {kind} stores: {', '.join(of_kind) or 'none'} "
                            f"(set Config.{kind}_store; see `agentmem plugins`)")
    return entry.obj


def progress_bar(total: int, progress: bool | None, desc: str) -> Any:
    """A tqdm bar for ``total`` units, or None: ``progress=None`` shows one from 2,000 units up."""
    if progress is False or (progress is None and total < 2000):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="item")
