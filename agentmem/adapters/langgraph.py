"""LangGraph's ``BaseStore`` over an agentmem ``Memory`` or ``Client`` (``agentmem-toolkit[langgraph]``).

Decisions the interface forced:

- Namespaces are tuples of any depth; agentmem scopes have three fields. The first components of a
  namespace become the scope (``scope_keys``, default ``("user",)``: ``("alice", "notes")`` is user
  alice), so a namespace's items are one scope's items and another user's namespace is another
  partition; the whole namespace is kept in the item's metadata (``_lg_ns``, and ``_lg_0``,
  ``_lg_1``... one per component) for exact and prefix matches.
- Keys are strings the graph chooses; agentmem ids are integers. ``(namespace, key)`` is found by
  its metadata (``_lg_path``, ``_lg_key``); ``put`` of an existing key replaces the item (forget,
  then remember) and keeps its ``created_at``.
- A value is a JSON object. Its top-level fields are the item's metadata too, so ``search``'s
  ``filter`` (equalities; ``$eq`` only) is agentmem's metadata filter. The text remembered (what
  recall embeds and indexes) is the value's ``index`` fields, or the whole value as JSON.
- ``search`` with a ``query`` is agentmem's recall (vector, lexical, time, graph evidence fused):
  scores are recall scores, not cosines. Without a query, items come newest first.
- ``batch`` answers its reads first and applies its puts after (the last per key), as LangGraph's
  ``InMemoryStore`` does. No TTL (``supports_ttl = False``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from langgraph.store.base import (
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)

from agentmem.errors import NotFoundError

SCOPE_FIELDS = ("user", "agent", "session")
SEP = "\x1f"  # joins a namespace's components in ``_lg_path`` (a unit separator: not in real names)
PAGE = 10_000  # items read per request when a listing pages through a scope


class AgentMemStore(BaseStore):
    """A LangGraph store whose items are memories (see the module docstring for the mapping)."""

    supports_ttl = False

    def __init__(self, memory: Any, scope_keys: tuple[str, ...] = ("user",)) -> None:
        if not scope_keys or any(k not in SCOPE_FIELDS for k in scope_keys) or len(set(scope_keys)) != len(scope_keys):
            raise ValueError(f"scope_keys must name distinct fields of {SCOPE_FIELDS}, e.g. ('user',)")
        self.memory = memory
        self.scope_keys = scope_keys

    # --- mapping ---------------------------------------------------------------------------------

    def _scope(self, namespace: tuple[str, ...]) -> dict[str, str] | None:
        """The scope a namespace (or prefix) lives in; None when it is shorter than the scope keys."""
        if len(namespace) < len(self.scope_keys):
            return None
        return dict(zip(self.scope_keys, namespace, strict=False))

    def _find(self, namespace: tuple[str, ...], key: str) -> Any:
        scope = self._scope(namespace)
        if scope is None:
            raise ValueError(f"namespace {namespace} has fewer components than scope_keys {self.scope_keys}")
        found = self.memory.items(scope, limit=1, filters={"_lg_path": SEP.join(namespace), "_lg_key": key})
        return found[0] if found else None

    @staticmethod
    def _fields(item: Any) -> tuple[tuple[str, ...], str, dict[str, Any], datetime, datetime]:
        """(namespace, key, value, created_at, updated_at) of an item the store put."""
        meta = item.metadata
        created = datetime.fromtimestamp(meta.get("_lg_created", item.created_at), tz=UTC)
        return (tuple(meta["_lg_ns"]), meta["_lg_key"], meta.get("_lg_value", {}), created,
                datetime.fromtimestamp(item.created_at, tz=UTC))

    def _item(self, item: Any) -> Item:
        namespace, key, value, created, updated = self._fields(item)
        return Item(value=value, key=key, namespace=namespace, created_at=created, updated_at=updated)

    def _search_item(self, item: Any, score: float | None) -> SearchItem:
        return SearchItem(*self._fields(item), score=score)

    # --- operations ------------------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Answer the reads in order, then apply the puts (the last one per namespace and key), as
        LangGraph's InMemoryStore does: the reads of a batch see the store as it was before it. Every
        put is durable when the call returns."""
        out: list[Result] = []
        puts: dict[tuple[tuple[str, ...], str], PutOp] = {}
        for op in ops:
            if isinstance(op, GetOp):
                found = self._find(op.namespace, op.key)
                out.append(None if found is None else self._item(found))
            elif isinstance(op, PutOp):
                puts.pop((tuple(op.namespace), op.key), None)  # a later put replaces it, in its place
                puts[(tuple(op.namespace), op.key)] = op
                out.append(None)
            elif isinstance(op, SearchOp):
                out.append(self._search(op))
            elif isinstance(op, ListNamespacesOp):
                out.append(self._list_namespaces(op))
            else:
                raise ValueError(f"unknown operation {type(op).__name__}")
        for put in puts.values():
            self._put(put)
        return out

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return await asyncio.get_running_loop().run_in_executor(None, self.batch, list(ops))

    def _put(self, op: PutOp) -> None:
        if any(not isinstance(part, str) or not part or SEP in part for part in op.namespace):
            raise ValueError(f"namespace components must be non-empty strings, got {op.namespace}")
        existing = self._find(op.namespace, op.key)
        created = existing.metadata.get("_lg_created", existing.created_at) if existing is not None else None
        if existing is not None:
            with contextlib.suppress(NotFoundError):  # forgotten meanwhile by another writer
                self.memory.forget(existing.id)
        if op.value is None:  # a delete
            return
        value = dict(op.value)
        if any(k.startswith("_lg_") for k in value):
            raise ValueError("value fields may not start with '_lg_' (agentmem keeps the namespace there)")
        meta: dict[str, Any] = {**value, "_lg_value": value, "_lg_ns": list(op.namespace),
                                "_lg_path": SEP.join(op.namespace), "_lg_key": op.key,
                                **{f"_lg_{i}": part for i, part in enumerate(op.namespace)}}
        if created is not None:
            meta["_lg_created"] = created
        fields = op.index if isinstance(op.index, list) else None
        text = " ".join(str(value.get(f, "")) for f in fields) if fields else json.dumps(value, sort_keys=True)
        self.memory.remember(text or op.key, meta, self._scope(op.namespace))

    def _filters(self, prefix: tuple[str, ...], filter_: dict[str, Any] | None) -> dict[str, Any]:
        out: dict[str, Any] = {f"_lg_{i}": part for i, part in enumerate(prefix)}
        for k, v in (filter_ or {}).items():
            if isinstance(v, dict):
                if set(v) != {"$eq"}:
                    raise ValueError(f"filter on {k!r}: only equality ($eq) is supported by agentmem's store")
                v = v["$eq"]
            out[k] = v
        return out

    def _search(self, op: SearchOp) -> list[SearchItem]:
        scope = self._scope(op.namespace_prefix) or {}  # a short prefix: every scope, matched by metadata
        filters = self._filters(op.namespace_prefix, op.filter)
        want = op.limit + op.offset
        if op.query:
            hits = self.memory.recall(op.query, k=min(1000, want), scope=scope, filters=filters)
            items = self.memory.get_many([h.id for h in hits])  # one read (one request over a Client)
            found = [(items[h.id], h.score) for h in hits if h.id in items]
        else:
            found = [(i, None) for i in self._all(scope, filters, want)]
        return [self._search_item(i, s) for i, s in found[op.offset:want] if "_lg_ns" in i.metadata]

    def _all(self, scope: dict[str, str], filters: dict[str, Any], limit: int | None = None) -> list[Any]:
        """The items of ``scope`` passing ``filters``, newest first (at most ``limit``), page by page."""
        out: list[Any] = []
        before: int | None = None
        while limit is None or len(out) < limit:
            want = PAGE if limit is None else min(PAGE, limit - len(out))
            page = self.memory.items(scope, limit=want, before=before, filters=filters)
            out += page
            if len(page) < want:
                break
            before = page[-1].id
        return out

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        prefix: tuple[str, ...] = ()
        for cond in op.match_conditions or ():
            if cond.match_type == "prefix" and "*" not in cond.path:
                prefix = tuple(cond.path)
        scope = self._scope(prefix) or {}
        spaces = {tuple(i.metadata["_lg_ns"]) for i in self._all(scope, self._filters(prefix, None))
                  if "_lg_ns" in i.metadata}
        for cond in op.match_conditions or ():
            spaces = {ns for ns in spaces if _matches(cond.match_type, tuple(cond.path), ns)}
        if op.max_depth is not None:
            spaces = {ns[: op.max_depth] for ns in spaces}
        return sorted(spaces)[op.offset: op.offset + op.limit]


def _matches(kind: str, path: tuple[str, ...], ns: tuple[str, ...]) -> bool:
    """Whether namespace ``ns`` starts (``prefix``) or ends (``suffix``) with ``path`` ('*': any component)."""
    if len(ns) < len(path):
        return False
    pairs = zip(ns, path, strict=False) if kind == "prefix" else zip(reversed(ns), reversed(path), strict=False)
    return all(p == "*" or a == p for a, p in pairs)
