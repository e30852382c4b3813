"""The knowledge graph: facts journaled in SQLite, served from a NetworkX MultiDiGraph cache.

The in-memory graph is rebuilt from the ``facts`` table on open, so it can never be stale or
half-written. Edges carry the fact id, the linked item and the scope; every query filters by scope.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from agentmem import scope as scopes
from agentmem import validate
from agentmem.errors import InvalidInputError, ReadOnlyError
from agentmem.rwlock import SharedLock
from agentmem.types import Fact

if TYPE_CHECKING:
    import networkx as nx

    from agentmem.ltm.journal import Journal

F = TypeVar("F", bound=Callable[..., Any])
_WORD = re.compile(r"\w+", re.UNICODE)
MAX_NAME = 512


def _check_name(kind: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip() or "\x00" in value or not _encodable(value):
        raise InvalidInputError(f"fact {kind} must be a non-empty string of valid unicode, got {value!r}")
    if len(value) > MAX_NAME:
        raise InvalidInputError(f"fact {kind} is longer than {MAX_NAME} characters; shorten it")
    return value.strip()


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _query(entity: object, scope: object) -> dict[str, str]:
    """Check a query's entity (a string; unknown ones simply match nothing) and scope."""
    if not isinstance(entity, str):
        raise InvalidInputError(f"entity must be a string, got {type(entity).__name__}")
    return validate.scope(scope)


def _key(name: str) -> str:
    """How a name is matched: its words, lower-cased ("Dr. Smith" and "dr smith" -> "dr smith")."""
    return " ".join(_WORD.findall(name.lower()))


def _reads(method: F) -> F:
    """Run a method sharing the graph's lock with other readers: writers hold it alone while they
    change the graph, so a walk over edges never sees a dict change size under it."""

    @functools.wraps(method)
    def run(self: KnowledgeGraph, *args: Any, **kwargs: Any) -> Any:
        with self._lock.shared():
            return method(self, *args, **kwargs)

    return run  # type: ignore[return-value]


def _writes(method: F) -> F:
    """Run a method holding the graph's lock alone."""

    @functools.wraps(method)
    def run(self: KnowledgeGraph, *args: Any, **kwargs: Any) -> Any:
        with self._lock.exclusive():
            return method(self, *args, **kwargs)

    return run  # type: ignore[return-value]


class KnowledgeGraph:
    """Entities and relations, linked to the items they were learned from. Queries name entities
    case-insensitively, by their words, as :meth:`find_entities` matches them: ``path("caroline",
    "melanie")`` finds the path between "Caroline" and "Melanie" (and any other spellings of either
    that differ only in case or punctuation)."""

    def __init__(self, journal: Journal, writable: bool = True) -> None:
        import networkx as nx

        self._journal = journal
        self._writable = writable
        self._lock = SharedLock("a graph read cannot change the graph")
        self.g: nx.MultiDiGraph = nx.MultiDiGraph()
        self._by_lower: dict[str, set[str]] = {}  # _key(name) -> the names (nodes) with that key
        self._item_edges: dict[int, set[tuple[str, str, int]]] = {}  # item -> its edges (s, o, fact id)
        self._max_words = 1
        self.rebuild()

    @_writes
    def rebuild(self) -> None:
        """Reload the graph from the journal."""
        self.g.clear()
        self._by_lower.clear()
        self._item_edges.clear()
        with self._journal.reading() as conn:
            rows = conn.execute(
                "SELECT id, subject, relation, object, item_id, user, agent, session FROM facts").fetchall()
        for row in rows:
            self._add_edge(row[0], row[1], row[2], row[3], row[4], scopes.from_columns(row[5:8]))

    def _add_edge(self, fid: int, s: str, r: str, o: str, item: int | None, scope: dict[str, str]) -> None:
        self.g.add_edge(s, o, key=fid, relation=r, item=item, scope=scope)
        if item is not None:
            self._item_edges.setdefault(item, set()).add((s, o, fid))
        for name in (s, o):
            self._by_lower.setdefault(_key(name), set()).add(name)
            self._max_words = max(self._max_words, min(6, len(_WORD.findall(name))))

    def add_fact(self, subject: str, relation: str, object: str, item: int | None = None,
                 scope: dict[str, str] | None = None) -> Fact:
        """Journal a fact and add it to the graph. ``item`` links it to a remembered item (its scope
        is then the item's scope; an item merged into another links to that one)."""
        s, r, o = _check_name("subject", subject), _check_name("relation", relation), \
            _check_name("object", object)
        with self._journal.tx() as c:
            fid, item, scope_ = self._insert(c, s, r, o, item, scope)
            with self._lock.exclusive():  # readers see whole edges
                self._add_edge(fid, s, r, o, item, scope_)
        return Fact(s, r, o, item)

    def add_facts(self, facts: Iterable[Fact], scope: dict[str, str]) -> int:
        """Add many facts in one transaction; returns how many. ``scope`` applies to facts without an
        item; a fact linked to an item always takes that item's scope (scopes are partitions)."""
        rows = []
        with self._journal.tx() as c:
            for f in facts:
                s, r, o = _check_name("subject", f.subject), _check_name("relation", f.relation), \
                    _check_name("object", f.object)
                rows.append((*self._insert(c, s, r, o, f.item, scope), s, r, o))
            with self._lock.exclusive():
                for fid, item, scope_, s, r, o in rows:
                    self._add_edge(fid, s, r, o, item, scope_)
        return len(rows)

    def _insert(self, c: Any, s: str, r: str, o: str, item: int | None, scope: dict[str, str] | None
                ) -> tuple[int, int | None, dict[str, str]]:
        if not self._writable:
            raise ReadOnlyError("this memory was opened read_only=True; open it without to add facts")
        if item is None:
            scope = validate.scope(scope)
        else:
            canonical = self._journal.canonical(validate.item_id(item))
            if canonical is None:
                raise InvalidInputError(f"item {item!r} does not exist; remember it first or pass item=None")
            row = c.execute("SELECT user, agent, session FROM items WHERE id = ?", (canonical,)).fetchone()
            item, scope = canonical, scopes.from_columns(row)
        cur = c.execute(
            "INSERT INTO facts (subject, relation, object, item_id, user, agent, session, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (s, r, o, item, *scopes.key(scope), time.time()))
        assert cur.lastrowid is not None
        return cur.lastrowid, item, scope

    @_writes
    def add_rows(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Add already-journaled fact rows (id, subject, relation, object, item_id, scope) to the cache."""
        for fid, s, r, o, item, scope in rows:
            self._add_edge(fid, s, r, o, item, scope)

    def _nodes(self, entity: str) -> list[str]:
        """The graph's names for ``entity``: itself if it is one, and every name with its key."""
        names = self._by_lower.get(_key(entity), set()) | ({entity} if entity in self.g else set())
        return sorted(names, key=lambda n: (n != entity, n))

    def _edges(self, scope: dict[str, str]) -> Iterable[tuple[str, str, int, dict[str, Any]]]:
        for s, o, key, data in self.g.edges(keys=True, data=True):
            if scopes.contains(scope, data["scope"]):
                yield s, o, key, data

    @_reads
    def facts(self, entity: str | None = None, relation: str | None = None,
              scope: dict[str, str] | None = None) -> list[Fact]:
        """Facts whose subject or object is ``entity`` (all facts when None), optionally of one relation."""
        scope = _query("" if entity is None else entity, scope)
        if entity is None:
            edges = self._edges(scope)
        else:
            nodes = self._nodes(entity)
            out_e = self.g.out_edges(nodes, keys=True, data=True)
            in_e = self.g.in_edges(nodes, keys=True, data=True)
            edges = (e for e in [*out_e, *in_e] if scopes.contains(scope, e[3]["scope"]))
        seen: set[int] = set()
        result = []
        for s, o, key, data in edges:
            if key in seen or (relation is not None and data["relation"] != relation):
                continue
            seen.add(key)
            result.append((key, Fact(s, data["relation"], o, data["item"])))
        return [f for _, f in sorted(result, key=lambda x: x[0])]

    @_reads
    def neighbours(self, entity: str, depth: int = 1, scope: dict[str, str] | None = None) -> list[str]:
        """Entities within ``depth`` hops (either direction), nearest first."""
        scope = _query(entity, scope)
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
            raise InvalidInputError(f"depth must be an int >= 0, got {depth!r}")
        frontier = self._nodes(entity)
        seen, order = set(frontier), []
        for _ in range(depth):
            nxt = []
            for node in frontier:
                edges = [*self.g.out_edges(node, data=True), *self.g.in_edges(node, data=True)]
                for s, o, data in edges:
                    other = o if s == node else s
                    if other not in seen and scopes.contains(scope, data["scope"]):
                        seen.add(other)
                        nxt.append(other)
                        order.append(other)
            frontier = nxt
        return order

    @_reads
    def path(self, source: str, target: str, scope: dict[str, str] | None = None) -> list[str]:
        """Shortest path of entities between two entities (ignoring direction); [] when none."""
        import networkx as nx

        scope = _query(source, scope)
        _query(target, None)
        view = nx.subgraph_view(self.g, filter_edge=lambda s, o, k: scopes.contains(scope, self.g[s][o][k]["scope"]))
        undirected = view.to_undirected(as_view=True)
        best: list[str] = []
        for s in self._nodes(source):
            for t in self._nodes(target):
                try:
                    found = list(nx.shortest_path(undirected, s, t))
                except nx.NetworkXNoPath:
                    continue
                if not best or len(found) < len(best):
                    best = found
        return best

    @_reads
    def find_entities(self, text: str) -> list[str]:
        """Known entity names mentioned in ``text`` (case-insensitive, whole words)."""
        words = [w.lower() for w in _WORD.findall(text)]
        found: list[str] = []
        for n in range(self._max_words, 0, -1):
            for i in range(len(words) - n + 1):
                names = self._by_lower.get(" ".join(words[i:i + n]))
                if names:
                    found.extend(sorted(names - set(found)))
        return found

    @_reads
    def items_for(self, entities: list[str], scope: dict[str, str], hops: int = 1) -> list[int]:
        """Items linked to facts touching ``entities`` or their neighbours within ``hops``; nearer first."""
        ranked: list[int] = []
        seen: set[int] = set()
        layers = [entities]
        if hops > 1:
            layers.append([n for e in entities for n in self.neighbours(e, hops - 1, scope)])
        for layer in layers:
            for entity in layer:
                if entity not in self.g:
                    continue
                for _, _, data in [*self.g.out_edges(entity, data=True), *self.g.in_edges(entity, data=True)]:
                    item = data["item"]
                    if item is not None and item not in seen and scopes.contains(scope, data["scope"]):
                        seen.add(item)
                        ranked.append(item)
        return ranked

    @_reads
    def entity_items(self, entities: Iterable[str], scope: dict[str, str], max_df: int,
                     min_df: int = 1) -> dict[str, set[int]]:
        """Entity -> the items of ``scope`` linked to it (as subject or object of a fact), for entities
        linked to at least ``min_df`` and at most ``max_df`` items: a hub (the speakers of a
        conversation) connects everything and so says nothing. Reads at most ``max_df + 1`` links per
        entity and role, so a hub costs no more than a rare entity: two queries with a limit each
        rather than one UNION, whose limit SQLite applied only after reading every link of a hub."""
        s_sql, s_params = scopes.clause(scope)
        as_subject = f"SELECT item_id FROM facts WHERE subject = ? AND item_id IS NOT NULL{s_sql} LIMIT ?"
        as_object = f"SELECT item_id FROM facts WHERE object = ? AND item_id IS NOT NULL{s_sql} LIMIT ?"
        out: dict[str, set[int]] = {}
        with self._journal.reading() as conn:
            for entity in sorted(set(entities)):
                items = {int(r[0]) for r in conn.execute(as_subject, [entity, *s_params, max_df + 1])}
                if len(items) <= max_df:  # past max_df it is a hub either way
                    items.update(int(r[0]) for r in conn.execute(as_object, [entity, *s_params, max_df + 1]))
                if min_df <= len(items) <= max_df:
                    out[entity] = items
        return out

    def expand(self, seeds: list[int], scope: dict[str, str], max_df: int) -> dict[int, float]:
        """Items of ``scope`` sharing a specific entity (see :meth:`entity_items`) with the ``seeds``:
        id -> the share of the seeds leading to it (each seed counts once per item). Seeds gain too
        when they lead to each other. Recall's graph expansion, for multi-hop questions."""
        if not seeds:
            return {}
        marks = ",".join("?" * len(seeds))
        with self._journal.reading() as conn:
            rows = conn.execute(
                f"SELECT item_id, subject, object FROM facts WHERE item_id IN ({marks})", seeds).fetchall()
        seed_entities: dict[int, set[str]] = {}
        for item, s, o in rows:
            seed_entities.setdefault(int(item), set()).update((s, o))
        found = self.entity_items(set().union(*seed_entities.values()) if seed_entities else (), scope,
                                  max_df, min_df=2)
        gains: dict[int, float] = {}
        for seed, entities in seed_entities.items():
            for i in set().union(*(found.get(e, set()) for e in entities)) - {seed}:
                gains[i] = gains.get(i, 0.0) + 1.0 / len(seeds)
        return gains

    @_writes
    def remove_items(self, ids: Iterable[int]) -> None:
        """Drop edges linked to forgotten items (the journal rows are deleted by the caller)."""
        doomed = [edge for i in set(ids) for edge in self._item_edges.pop(i, ())]
        for s, o, k in doomed:
            self.g.remove_edge(s, o, k)
        for node in {x for e in doomed for x in e[:2]}:
            if node not in self.g or self.g.degree(node) > 0:
                continue
            self.g.remove_node(node)
            names = self._by_lower.get(_key(node))
            if names:
                names.discard(node)
                if not names:
                    del self._by_lower[_key(node)]

    @_writes
    def relink(self, old: int, new: int) -> None:
        """Point edges of a merged item at the item it was merged into."""
        edges = self._item_edges.pop(old, set())
        for s, o, k in edges:
            self.g[s][o][k]["item"] = new
        if edges:
            self._item_edges.setdefault(new, set()).update(edges)

    @_reads
    def stats(self) -> dict[str, int]:
        return {"entities": self.g.number_of_nodes(), "facts": self.g.number_of_edges()}
