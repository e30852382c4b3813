"""What a store plugin provides: the vector and graph stores :class:`agentmem.Memory` selects by name.

A plugin registers a store in its ``register_stores`` hook: ``register(name, factory, kind="vector")``
(or ``kind="graph"``); ``Memory(path, vector_store=name)`` / ``graph_store=name`` (fields of
:class:`agentmem.Config`) choose it. The built-ins are ``"faiss"`` (:class:`agentmem.ltm.vector.VectorIndex`)
and ``"networkx"`` (:class:`agentmem.ltm.graph.KnowledgeGraph`). ``tests/test_store_contract.py`` runs
the same behaviour tests against every registered vector store; ``tests/numpy_store.py`` is a complete
outside store in 170 lines. The journal is the source of truth: a vector store is a cache the memory
rebuilds from it whenever the store's files are missing, unreadable or behind (so a store may keep
no files at all).

The journal (``"sqlite"``) is not chosen here yet: its protocol is the PostgreSQL issue's work.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from agentmem.types import Fact

Scope = dict[str, str]


@runtime_checkable
class VectorStore(Protocol):
    """Inner-product search over unit vectors of item ids, each with a scope and a time.

    Rows: every added vector is a row, numbered from 0 in order of addition; ``remove`` tombstones rows
    (``n`` counts them, ``len`` does not). A *mask* is a boolean array over rows ``[0, n)`` (or None for
    "every live row"): :meth:`mask` makes one, every search takes one. Scores are cosines (float).
    Methods may be called from several threads; the memory serialises writes.
    """

    dim: int
    n: int  # rows so far, removed ones included

    @property
    def has_ann(self) -> bool:
        """Whether searches are approximate (the memory then keeps BLAS threads to one while adding)."""

    def __len__(self) -> int:
        """Live rows."""

    def __contains__(self, item_id: int) -> bool: ...

    def ids(self) -> np.ndarray:
        """Ids of the live rows, int64."""

    def vectors_of(self, ids: list[int]) -> np.ndarray:
        """(len(ids), dim) vectors of live ids (KeyError for another)."""

    def scores_of(self, ids: list[int], query: np.ndarray) -> np.ndarray:
        """Cosines of ``query`` with each id's vector; 0.0 for an id not held (recall then counts it as
        unrelated)."""

    def reserve(self, extra: int) -> None:
        """A hint: ``extra`` more rows are coming."""

    def add(self, ids: np.ndarray, vecs: np.ndarray, scopes: list[Scope], *, times: Any = None,
            defer_ann: bool = False) -> None:
        """Add rows: ids (never reused), unit vectors (len(ids), dim), each item's scope and time
        (unix seconds; None: unknown, NaN in :meth:`time_of`)."""

    def remove(self, ids: list[int]) -> None:
        """Tombstone the rows of ``ids`` (ids not held are ignored)."""

    def mask(self, scope: Scope, allowed: np.ndarray | None = None, since: float | None = None,
             until: float | None = None) -> np.ndarray | None:
        """Live rows in the query ``scope`` (:func:`agentmem.scope.contains`), among the ``allowed``
        ids if given, with a time in [since, until] if given; None when that is every live row."""

    def search(self, query: np.ndarray, k: int, mask: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The ``k`` best (id, cosine) among the rows of ``mask``, best first."""

    def search_batch(self, queries: np.ndarray, k: int, mask: np.ndarray | None = None,
                     ef_search: int | None = None) -> list[list[tuple[int, float]]]:
        """:meth:`search` for each row of ``queries``; ``ef_search`` may trade accuracy for speed."""

    def sample_scores(self, query: np.ndarray, mask: np.ndarray | None = None, n: int = 2048,
                      key: Any = None) -> np.ndarray:
        """Cosines of ``query`` with up to ``n`` rows of ``mask`` spread over it (all when fewer):
        recall standardises the dense scores with them. ``key`` names the mask (a scope) for caching."""

    def search_and_sample(self, query: np.ndarray, k: int, mask: np.ndarray | None = None, n: int = 2048,
                          key: Any = None) -> tuple[list[tuple[int, float]], np.ndarray]:
        """``(search(query, k, mask), sample_scores(query, mask, n, key))``."""

    def time_of(self, item_id: int) -> float:
        """The time a live id was added with (NaN if unknown)."""

    def set_times(self, ids: np.ndarray, times: np.ndarray) -> None:
        """Fill in the times of held ids."""

    def unknown_times(self) -> np.ndarray:
        """Live ids whose time is unknown."""

    def wait(self) -> None:
        """Finish background indexing."""

    def save(self, path: Path, background: bool = False) -> int:
        """Write the store beside ``path`` (the memory's ``vectors.npz``); returns how many rows the
        saved files hold. Saving nothing is allowed: the memory then rebuilds the store on open."""

    def wait_saved(self) -> None:
        """Finish a background save."""

    def close(self) -> None:
        """Stop background work; the store is not used afterwards."""


class VectorStoreFactory(Protocol):
    """What ``register(name, factory, kind="vector")`` registers: a class (or object) with these."""

    def __call__(self, dim: int, **options: Any) -> VectorStore:
        """An empty store. ``options``: ``ann_threshold`` and ``ef_search`` from the Config (a store
        may ignore them)."""

    def load(self, path: Path, dim: int, **options: Any) -> VectorStore:
        """The store saved beside ``path``; ValueError/OSError/RuntimeError when it is unusable (the
        memory then rebuilds it from the journal)."""


@runtime_checkable
class GraphStore(Protocol):
    """The knowledge graph over facts the journal holds (subject, relation, object, item, scope). Built
    with ``factory(journal, writable=bool)``; it reads and writes facts through the journal."""

    def add_rows(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Facts the journal has just committed: (fact id, subject, relation, object, item, scope)."""

    def remove_items(self, ids: Iterable[int]) -> None:
        """Forget the facts of deleted items."""

    def relink(self, old: int, new: int) -> None:
        """An item merged into another: its facts now belong to the other."""

    def rebuild(self) -> None:
        """Reload every fact from the journal."""

    def add_fact(self, subject: str, relation: str, object: str, item: int | None = None,
                 scope: Scope | None = None) -> Fact:
        """Record a fact (in the journal first). A fact of an item takes the item's scope."""

    def add_facts(self, facts: Iterable[Fact], scope: Scope) -> int:
        """Record many facts of one scope; how many."""

    def path(self, source: str, target: str, scope: Scope | None = None) -> list[str]:
        """The shortest chain of entities from ``source`` to ``target`` inside ``scope`` ([] if none)."""

    def items_for(self, entities: list[str], scope: Scope, hops: int = 1) -> list[int]:
        """Items whose facts link to ``entities`` (within ``hops``) inside ``scope``."""

    def facts(self, entity: str | None = None, relation: str | None = None,
              scope: Scope | None = None) -> list[Fact]:
        """Facts about ``entity`` (as subject or object), of ``relation``, inside the query ``scope``."""

    def neighbours(self, entity: str, depth: int = 1, scope: Scope | None = None) -> list[str]:
        """Entities within ``depth`` hops of ``entity`` inside ``scope``."""

    def find_entities(self, text: str) -> list[str]:
        """Known entities named in ``text`` (recall's graph evidence starts from them)."""

    def entity_items(self, entities: Iterable[str], scope: Scope, max_df: int, min_df: int = 1
                     ) -> dict[str, set[int]]:
        """Entity -> items of ``scope`` linked to it, for entities linked to ``min_df``..``max_df`` items."""

    def expand(self, seeds: list[int], scope: Scope, max_df: int) -> dict[int, float]:
        """Items sharing a specific entity with ``seeds``: id -> share of the seeds leading to it."""

    def stats(self) -> dict[str, int]:
        """At least ``entities`` and ``facts``."""
