"""``agentmem.Client`` and ``agentmem.AsyncClient``: the ``Memory`` API over HTTP, against ``agentmem serve``.

The same calls and the same types (:class:`~agentmem.types.Hit`, :class:`~agentmem.types.Item`,
:class:`~agentmem.types.Fact`), so code written against a local ``Memory`` runs against a server. A
server's error comes back as the same ``agentmem.errors`` class with the server's message. Both
clients send the requests :class:`Calls` describes, so they cannot drift apart.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from agentmem import errors
from agentmem.ltm.weights import WeightVersion, state_from_bytes
from agentmem.types import Fact, Hit, Item, LogEntry


def _time(value: Any) -> float | str | None:
    if value is None or isinstance(value, int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    raise errors.InvalidInputError(f"a time must be unix seconds, an ISO-8601 string or a datetime, "
                                   f"got {type(value).__name__}")


def _vector(value: Any) -> list[float] | None:
    return None if value is None else np.asarray(value, dtype=np.float32).reshape(-1).tolist()


def _item(i: dict[str, Any]) -> Item:
    return Item(i["id"], i["text"], i["metadata"], i["scope"], i["created_at"], i["event_time"], i["tier"],
                i["count"], i["importance"], i["merged_into"])


def _fact(f: dict[str, Any]) -> Fact:
    return Fact(f["subject"], f["relation"], f["object"], f["item"])


def _hit(h: dict[str, Any]) -> Hit:
    return Hit(h["id"], h["text"], h["score"], h["metadata"], h["source"], h["scope"], h["event_time"],
               h["cosine"], h["matched"], tuple(h["evidence"]))


@dataclass
class Call:
    """One request and how to read its answer (the JSON body, or the response itself when ``raw``)."""

    method: str
    path: str
    read: Callable[[Any], Any]
    kw: dict[str, Any] = field(default_factory=dict)
    raw: bool = False


def _raise_for(response: Any) -> None:
    """The server's error as its ``agentmem.errors`` class."""
    if response.status_code < 400:
        return
    try:
        err = response.json()["error"]
        kind, message = str(err["type"]), str(err["message"])
    except (ValueError, KeyError, TypeError):
        kind, message = "AgentMemError", f"HTTP {response.status_code}: {response.text[:500]}"
    cls = getattr(errors, kind, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.AgentMemError)):
        cls = errors.AgentMemError
    try:
        error = cls(message)
    except TypeError:  # a class that takes more than a message (EmbedderMismatchError)
        error = errors.AgentMemError(f"{kind}: {message}")
    raise error


class Calls:
    """The requests of every client call (what ``Memory``'s method of the same name does)."""

    @staticmethod
    def remember(text: str, metadata: dict[str, Any] | None = None, scope: dict[str, str] | None = None, *,
                 time: Any = None, embedding: Any = None) -> Call:
        body = {"text": text, "metadata": metadata, "scope": scope, "time": _time(time),
                "embedding": _vector(embedding)}
        return Call("POST", "/v1/memories", lambda r: int(r["ids"][0]), {"json": body})

    @staticmethod
    def remember_many(texts: Sequence[str], metadatas: Sequence[dict[str, Any] | None] | None = None,
                      scope: dict[str, str] | None = None, *, times: Sequence[Any] | None = None,
                      embeddings: Any = None, batch_size: int = 500, progress: bool | None = None) -> list[Call]:
        # progress: accepted as Memory.remember_many does; the work happens on the server, so no bar here
        if isinstance(texts, str):
            raise errors.InvalidInputError("texts must be a list of strings (for one text use remember())")
        n = len(texts)
        metas = list(metadatas) if metadatas is not None else [None] * n
        stamps = list(times) if times is not None else [None] * n
        vecs = None if embeddings is None else np.asarray(embeddings, dtype=np.float32)
        if len(metas) != n or len(stamps) != n or (vecs is not None and len(vecs) != n):
            raise errors.InvalidInputError("texts, metadatas, times and embeddings must have equal lengths")
        calls = []
        for start in range(0, n, batch_size):
            items = [{"text": texts[j], "metadata": metas[j], "scope": scope, "time": _time(stamps[j]),
                      "embedding": None if vecs is None else vecs[j].tolist()}
                     for j in range(start, min(n, start + batch_size))]
            calls.append(Call("POST", "/v1/memories", lambda r: list(r["ids"]), {"json": {"items": items}}))
        return calls

    @staticmethod
    def forget(item_id: int) -> Call:
        return Call("DELETE", f"/v1/memories/{int(item_id)}", lambda r: list(r["ids"]))

    @staticmethod
    def forget_many(item_ids: Sequence[int]) -> Call:
        body = {"ids": [int(i) for i in item_ids]}
        return Call("POST", "/v1/memories/forget", lambda r: list(r["ids"]), {"json": body})

    @staticmethod
    def consolidate() -> Call:
        return Call("POST", "/v1/consolidate", dict)

    @staticmethod
    def recall(query: str, k: int = 10, scope: dict[str, str] | None = None, filters: dict[str, Any] | None = None,
               since: Any = None, until: Any = None, *, embedding: Any = None) -> Call:
        body = {"query": query, "k": k, "scope": scope, "filters": filters, "since": _time(since),
                "until": _time(until), "embedding": _vector(embedding)}
        return Call("POST", "/v1/recall", lambda r: [_hit(h) for h in r["hits"]], {"json": body})

    @staticmethod
    def items(scope: dict[str, str] | None = None, limit: int = 100, before: int | None = None,
              filters: dict[str, Any] | None = None) -> Call:
        params = {"limit": limit, **({} if before is None else {"before": before}), **(scope or {}),
                  **({} if filters is None else {"filters": json.dumps(filters)})}
        return Call("GET", "/v1/memories", lambda r: [_item(i) for i in r["items"]], {"params": params})

    @staticmethod
    def search_vectors(vectors: Any, k: int = 10, scope: dict[str, str] | None = None,
                       filters: dict[str, Any] | None = None, since: Any = None, until: Any = None) -> Call:
        arr = np.asarray(vectors, dtype=np.float32)
        body = {"vectors": (arr.reshape(1, -1) if arr.ndim == 1 else arr).tolist(), "k": k, "scope": scope,
                "filters": filters, "since": _time(since), "until": _time(until)}
        return Call("POST", "/v1/search", lambda r: [[(int(i), float(c)) for i, c in row] for row in r["results"]],
                    {"json": body})

    @staticmethod
    def get_many(ids: Sequence[int]) -> Call:
        return Call("POST", "/v1/memories/get", lambda r: {i["id"]: _item(i) for i in r["items"]},
                    {"json": {"ids": [int(i) for i in ids]}})

    @staticmethod
    def get(item_id: int) -> Call:
        return Call("GET", f"/v1/memories/{int(item_id)}", _item)

    @staticmethod
    def stats() -> Call:
        return Call("GET", "/v1/stats", dict)

    @staticmethod
    def history(limit: int = 50, before: int | None = None) -> Call:
        params = {"limit": limit, **({} if before is None else {"before": before})}
        return Call("GET", "/v1/history", lambda r: [LogEntry(**e) for e in r["entries"]], {"params": params})

    @staticmethod
    def add_fact(subject: str, relation: str, object: str, item: int | None = None,
                 scope: dict[str, str] | None = None) -> Call:
        body = {"subject": subject, "relation": relation, "object": object, "item": item, "scope": scope}
        return Call("POST", "/v1/graph/facts", _fact, {"json": body})

    @staticmethod
    def facts(entity: str | None = None, relation: str | None = None, scope: dict[str, str] | None = None) -> Call:
        params = {k: v for k, v in {"entity": entity, "relation": relation, **(scope or {})}.items() if v is not None}
        return Call("GET", "/v1/graph/facts", lambda r: [_fact(f) for f in r["facts"]], {"params": params})

    @staticmethod
    def neighbours(entity: str, depth: int = 1, scope: dict[str, str] | None = None) -> Call:
        return Call("GET", "/v1/graph/neighbours", lambda r: list(r["entities"]),
                    {"params": {"entity": entity, "depth": depth, **(scope or {})}})

    @staticmethod
    def path(source: str, target: str, scope: dict[str, str] | None = None) -> Call:
        return Call("GET", "/v1/graph/path", lambda r: list(r["entities"]),
                    {"params": {"source": source, "target": target, **(scope or {})}})

    @staticmethod
    def weight_names() -> Call:
        return Call("GET", "/v1/weights", lambda r: sorted(r["weights"]))

    @staticmethod
    def weight_versions(name: str) -> Call:
        def read(r: dict[str, Any]) -> list[WeightVersion]:
            found = r["weights"].get(name)
            if found is None:
                raise errors.NotFoundError(f"no weights named {name!r}")
            return [WeightVersion(name, v["version"], v["sha256"], v["size"], v["metadata"], v["created_at"],
                                  v["current"]) for v in found]
        return Call("GET", "/v1/weights", read)

    @staticmethod
    def weight_save(name: str, state: dict[str, Any], metadata: dict[str, Any] | None = None) -> Call:
        from safetensors.numpy import save

        arrays = {k: np.ascontiguousarray(v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v))
                  for k, v in state.items()}
        params = {"metadata": json.dumps(metadata)} if metadata is not None else {}
        return Call("POST", f"/v1/weights/{name}", lambda r: int(r["version"]),
                    {"content": save(arrays), "params": params,
                     "headers": {"content-type": "application/octet-stream"}})

    @staticmethod
    def weight_load(name: str, version: int | None = None, framework: str = "pt") -> Call:
        def read(response: Any) -> dict[str, Any]:
            data = response.content
            if hashlib.sha256(data).hexdigest() != response.headers.get("x-sha256"):
                raise errors.CorruptionError(f"weights {name!r}: the download does not match its sha256")
            return state_from_bytes(data, framework)
        params = {} if version is None else {"version": version}
        return Call("GET", f"/v1/weights/{name}/file", read, {"params": params}, raw=True)


def _http() -> Any:
    try:
        import httpx
    except ImportError as exc:  # pragma: no cover (the extra is installed by make install)
        raise errors.PluginError("agentmem.Client needs httpx: pip install 'agentmem-toolkit[serve]'") from exc
    return httpx


class Client:
    """A connection to ``agentmem serve`` at ``url`` (e.g. ``http://127.0.0.1:8765``) with an API key
    (``None`` for a server whose memory has no key yet). Thread-safe; close it, or use ``with``."""

    def __init__(self, url: str, key: str | None = None, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = _http().Client(base_url=self.url, headers=headers, timeout=timeout)
        self.weights = RemoteWeights(self._run)  # memory.weights, over HTTP

    def _run(self, call: Call) -> Any:
        response = self._http.request(call.method, call.path, **call.kw)
        _raise_for(response)
        return call.read(response if call.raw else response.json())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def remember(self, *args: Any, **kw: Any) -> int:
        """Store one text; its id, once the server's journal has committed it (``Memory.remember``)."""
        return int(self._run(Calls.remember(*args, **kw)))

    def remember_many(self, *args: Any, **kw: Any) -> list[int]:
        """Store many texts in one scope, ``batch_size`` (500) per request, each durable on its own: an
        error leaves the earlier batches stored. Ids in input order."""
        return [i for call in Calls.remember_many(*args, **kw) for i in self._run(call)]

    def forget(self, item_id: int) -> list[int]:
        """Forget an item everywhere (and the items merged into it); every id removed."""
        return list(self._run(Calls.forget(item_id)))

    def forget_many(self, item_ids: Sequence[int]) -> list[int]:
        """Forget several items, all or none (an unknown id: NotFoundError, nothing forgotten); every id removed."""
        return list(self._run(Calls.forget_many(item_ids)))

    def consolidate(self) -> dict[str, Any]:
        """Move the server's short-term memory into long-term memory now; counts of what happened."""
        return dict(self._run(Calls.consolidate()))

    def recall(self, *args: Any, **kw: Any) -> list[Hit]:
        """The ``k`` items most relevant to ``query`` within ``scope`` (the key's scope by default)."""
        return list(self._run(Calls.recall(*args, **kw)))

    def items(self, *args: Any, **kw: Any) -> list[Item]:
        """The items of ``scope`` (passing ``filters``), newest first: ``limit`` of them with ids below ``before``."""
        return list(self._run(Calls.items(*args, **kw)))

    def get(self, item_id: int) -> Item:
        """The item stored under ``item_id``, as it was remembered."""
        return self._run(Calls.get(item_id))

    def search_vectors(self, *args: Any, **kw: Any) -> list[list[tuple[int, float]]]:
        """For each query vector, the ``k`` items of ``scope`` nearest by cosine, as (id, cosine) best first."""
        return list(self._run(Calls.search_vectors(*args, **kw)))

    def get_many(self, ids: Sequence[int]) -> dict[int, Item]:
        """The items stored under ``ids`` that exist and that the key reaches."""
        return dict(self._run(Calls.get_many(ids)))

    def stats(self) -> dict[str, Any]:
        """Counts and sizes of every store (needs an admin key on a server with keys)."""
        return dict(self._run(Calls.stats()))

    def history(self, *args: Any, **kw: Any) -> list[LogEntry]:
        """Consolidations and forgets, newest first (needs an admin key on a server with keys)."""
        return list(self._run(Calls.history(*args, **kw)))

    def add_fact(self, *args: Any, **kw: Any) -> Fact:
        return self._run(Calls.add_fact(*args, **kw))

    def facts(self, *args: Any, **kw: Any) -> list[Fact]:
        return list(self._run(Calls.facts(*args, **kw)))

    def neighbours(self, *args: Any, **kw: Any) -> list[str]:
        return list(self._run(Calls.neighbours(*args, **kw)))

    def path(self, *args: Any, **kw: Any) -> list[str]:
        return list(self._run(Calls.path(*args, **kw)))


class AsyncClient:
    """:class:`Client` for asyncio: the same calls, awaited (``async with AsyncClient(url, key) as c``)."""

    def __init__(self, url: str, key: str | None = None, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = _http().AsyncClient(base_url=self.url, headers=headers, timeout=timeout)
        self.weights = AsyncRemoteWeights(self._run)

    async def _run(self, call: Call) -> Any:
        response = await self._http.request(call.method, call.path, **call.kw)
        _raise_for(response)
        return call.read(response if call.raw else response.json())

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncClient({self.url!r})"

    async def remember(self, *args: Any, **kw: Any) -> int:
        return int(await self._run(Calls.remember(*args, **kw)))

    async def remember_many(self, *args: Any, **kw: Any) -> list[int]:
        return [i for call in Calls.remember_many(*args, **kw) for i in await self._run(call)]

    async def forget(self, item_id: int) -> list[int]:
        return list(await self._run(Calls.forget(item_id)))

    async def forget_many(self, item_ids: Sequence[int]) -> list[int]:
        return list(await self._run(Calls.forget_many(item_ids)))

    async def consolidate(self) -> dict[str, Any]:
        return dict(await self._run(Calls.consolidate()))

    async def recall(self, *args: Any, **kw: Any) -> list[Hit]:
        return list(await self._run(Calls.recall(*args, **kw)))

    async def items(self, *args: Any, **kw: Any) -> list[Item]:
        return list(await self._run(Calls.items(*args, **kw)))

    async def get(self, item_id: int) -> Item:
        return await self._run(Calls.get(item_id))

    async def search_vectors(self, *args: Any, **kw: Any) -> list[list[tuple[int, float]]]:
        return list(await self._run(Calls.search_vectors(*args, **kw)))

    async def get_many(self, ids: Sequence[int]) -> dict[int, Item]:
        return dict(await self._run(Calls.get_many(ids)))

    async def stats(self) -> dict[str, Any]:
        return dict(await self._run(Calls.stats()))

    async def history(self, *args: Any, **kw: Any) -> list[LogEntry]:
        return list(await self._run(Calls.history(*args, **kw)))

    async def add_fact(self, *args: Any, **kw: Any) -> Fact:
        return await self._run(Calls.add_fact(*args, **kw))

    async def facts(self, *args: Any, **kw: Any) -> list[Fact]:
        return list(await self._run(Calls.facts(*args, **kw)))

    async def neighbours(self, *args: Any, **kw: Any) -> list[str]:
        return list(await self._run(Calls.neighbours(*args, **kw)))

    async def path(self, *args: Any, **kw: Any) -> list[str]:
        return list(await self._run(Calls.path(*args, **kw)))


class RemoteWeights:
    """``memory.weights`` of a server: names, versions, save (an admin key) and load (sha256 checked)."""

    def __init__(self, run: Callable[[Call], Any]) -> None:
        self._run = run

    def names(self) -> list[str]:
        return list(self._run(Calls.weight_names()))

    def versions(self, name: str) -> list[WeightVersion]:
        return list(self._run(Calls.weight_versions(name)))

    def save(self, name: str, state: dict[str, Any], metadata: dict[str, Any] | None = None) -> int:
        """Upload a state dict (torch tensors or numpy arrays) as the next version; its number."""
        return int(self._run(Calls.weight_save(name, state, metadata)))

    def load(self, name: str, version: int | None = None, framework: str = "pt") -> dict[str, Any]:
        """Download a version (the current one by default), check its sha256, and read it."""
        return dict(self._run(Calls.weight_load(name, version, framework)))


class AsyncRemoteWeights:
    """:class:`RemoteWeights`, awaited."""

    def __init__(self, run: Callable[[Call], Any]) -> None:
        self._run = run

    async def names(self) -> list[str]:
        return list(await self._run(Calls.weight_names()))

    async def versions(self, name: str) -> list[WeightVersion]:
        return list(await self._run(Calls.weight_versions(name)))

    async def save(self, name: str, state: dict[str, Any], metadata: dict[str, Any] | None = None) -> int:
        return int(await self._run(Calls.weight_save(name, state, metadata)))

    async def load(self, name: str, version: int | None = None, framework: str = "pt") -> dict[str, Any]:
        return dict(await self._run(Calls.weight_load(name, version, framework)))
