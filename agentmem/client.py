"""``agentmem.Client``: the ``Memory`` API over HTTP, against ``agentmem serve``.

The same calls and the same types (:class:`~agentmem.types.Hit`, :class:`~agentmem.types.Item`,
:class:`~agentmem.types.Fact`), so code written against a local ``Memory`` runs against a server. A
server's error comes back as the same ``agentmem.errors`` class with the server's message.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from agentmem import errors
from agentmem.ltm.weights import WeightVersion, state_from_bytes
from agentmem.types import Fact, Hit, Item


def _time(value: Any) -> float | str | None:
    if value is None or isinstance(value, int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    raise errors.InvalidInputError(f"a time must be unix seconds, an ISO-8601 string or a datetime, "
                                   f"got {type(value).__name__}")


def _vector(value: Any) -> list[float] | None:
    return None if value is None else np.asarray(value, dtype=np.float32).reshape(-1).tolist()


class Client:
    """A connection to ``agentmem serve`` at ``url`` (e.g. ``http://127.0.0.1:8765``) with an API key
    (``None`` for a server whose memory has no key yet). Thread-safe; close it, or use ``with``."""

    def __init__(self, url: str, key: str | None = None, *, timeout: float = 30.0) -> None:
        try:
            import httpx
        except ImportError as exc:  # pragma: no cover (the extra is installed by make install)
            raise errors.PluginError("agentmem.Client needs httpx: pip install 'agentmem-toolkit[serve]'") from exc
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        self.weights = RemoteWeights(self)  # memory.weights, over HTTP

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def _call(self, method: str, path: str, *, raw: bool = False, **kw: Any) -> Any:
        response = self._http.request(method, path, **kw)
        if response.status_code >= 400:
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
        return response if raw else response.json()

    # --- writing -------------------------------------------------------------------------------

    def remember(self, text: str, metadata: dict[str, Any] | None = None, scope: dict[str, str] | None = None,
                 *, time: Any = None, embedding: Any = None) -> int:
        """Store one text; its id, once the server's journal has committed it."""
        body = {"text": text, "metadata": metadata, "scope": scope, "time": _time(time),
                "embedding": _vector(embedding)}
        return int(self._call("POST", "/v1/memories", json=body)["ids"][0])

    def remember_many(self, texts: Sequence[str], metadatas: Sequence[dict[str, Any] | None] | None = None,
                      scope: dict[str, str] | None = None, *, times: Sequence[Any] | None = None,
                      embeddings: Any = None, batch_size: int = 500) -> list[int]:
        """Store many texts in one scope, ``batch_size`` per request (each request is durable on its
        own: an error leaves the earlier batches stored); ids in input order."""
        if isinstance(texts, str):
            raise errors.InvalidInputError("texts must be a list of strings (for one text use remember())")
        n = len(texts)
        metas = list(metadatas) if metadatas is not None else [None] * n
        stamps = list(times) if times is not None else [None] * n
        vecs = None if embeddings is None else np.asarray(embeddings, dtype=np.float32)
        if len(metas) != n or len(stamps) != n or (vecs is not None and len(vecs) != n):
            raise errors.InvalidInputError("texts, metadatas, times and embeddings must have equal lengths")
        ids: list[int] = []
        for start in range(0, n, batch_size):
            items = [{"text": texts[j], "metadata": metas[j], "scope": scope, "time": _time(stamps[j]),
                      "embedding": None if vecs is None else vecs[j].tolist()}
                     for j in range(start, min(n, start + batch_size))]
            ids += self._call("POST", "/v1/memories", json={"items": items})["ids"]
        return ids

    def forget(self, item_id: int) -> list[int]:
        """Forget an item everywhere (and the items merged into it); every id removed."""
        return list(self._call("DELETE", f"/v1/memories/{int(item_id)}")["ids"])

    def consolidate(self) -> dict[str, Any]:
        """Move the server's short-term memory into long-term memory now; counts of what happened."""
        return dict(self._call("POST", "/v1/consolidate"))

    # --- reading -------------------------------------------------------------------------------

    def recall(self, query: str, k: int = 10, scope: dict[str, str] | None = None,
               filters: dict[str, Any] | None = None, since: Any = None, until: Any = None, *,
               embedding: Any = None) -> list[Hit]:
        """The ``k`` items most relevant to ``query`` within ``scope`` (the key's scope by default)."""
        body = {"query": query, "k": k, "scope": scope, "filters": filters, "since": _time(since),
                "until": _time(until), "embedding": _vector(embedding)}
        return [Hit(h["id"], h["text"], h["score"], h["metadata"], h["source"], h["scope"], h["event_time"],
                    h["cosine"], h["matched"], tuple(h["evidence"]))
                for h in self._call("POST", "/v1/recall", json=body)["hits"]]

    def items(self, scope: dict[str, str] | None = None, limit: int = 100, before: int | None = None) -> list[Item]:
        """The items of ``scope``, newest first: ``limit`` of them with ids below ``before``."""
        params = {"limit": limit, **({} if before is None else {"before": before}), **(scope or {})}
        return [Item(i["id"], i["text"], i["metadata"], i["scope"], i["created_at"], i["event_time"], i["tier"],
                     i["count"], i["importance"], i["merged_into"])
                for i in self._call("GET", "/v1/memories", params=params)["items"]]

    def get(self, item_id: int) -> Item:
        """The item stored under ``item_id``, as it was remembered."""
        i = self._call("GET", f"/v1/memories/{int(item_id)}")
        return Item(i["id"], i["text"], i["metadata"], i["scope"], i["created_at"], i["event_time"], i["tier"],
                    i["count"], i["importance"], i["merged_into"])

    def stats(self) -> dict[str, Any]:
        """Counts and sizes of every store (needs an admin key on a server with keys)."""
        return dict(self._call("GET", "/v1/stats"))

    # --- the knowledge graph -------------------------------------------------------------------

    def add_fact(self, subject: str, relation: str, object: str, item: int | None = None,
                 scope: dict[str, str] | None = None) -> Fact:
        f = self._call("POST", "/v1/graph/facts", json={"subject": subject, "relation": relation,
                                                         "object": object, "item": item, "scope": scope})
        return Fact(f["subject"], f["relation"], f["object"], f["item"])

    def facts(self, entity: str | None = None, relation: str | None = None,
              scope: dict[str, str] | None = None) -> list[Fact]:
        params = {"entity": entity, "relation": relation, **(scope or {})}
        found = self._call("GET", "/v1/graph/facts", params={k: v for k, v in params.items() if v is not None})
        return [Fact(f["subject"], f["relation"], f["object"], f["item"]) for f in found["facts"]]

    def neighbours(self, entity: str, depth: int = 1, scope: dict[str, str] | None = None) -> list[str]:
        return list(self._call("GET", "/v1/graph/neighbours",
                               params={"entity": entity, "depth": depth, **(scope or {})})["entities"])

    def path(self, source: str, target: str, scope: dict[str, str] | None = None) -> list[str]:
        return list(self._call("GET", "/v1/graph/path",
                               params={"source": source, "target": target, **(scope or {})})["entities"])


class RemoteWeights:
    """``memory.weights`` of a server: names, versions, save (an admin key) and load."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def names(self) -> list[str]:
        return sorted(self._client._call("GET", "/v1/weights")["weights"])

    def versions(self, name: str) -> list[WeightVersion]:
        found = self._client._call("GET", "/v1/weights")["weights"].get(name)
        if found is None:
            raise errors.NotFoundError(f"no weights named {name!r}")
        return [WeightVersion(name, v["version"], v["sha256"], v["size"], v["metadata"], v["created_at"],
                              v["current"]) for v in found]

    def save(self, name: str, state: dict[str, Any], metadata: dict[str, Any] | None = None) -> int:
        """Upload a state dict (torch tensors or numpy arrays) as the next version; its number."""
        from safetensors.numpy import save

        arrays = {k: np.ascontiguousarray(v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v))
                  for k, v in state.items()}
        params = {"metadata": json.dumps(metadata)} if metadata is not None else {}
        return int(self._client._call("POST", f"/v1/weights/{name}", content=save(arrays), params=params,
                                      headers={"content-type": "application/octet-stream"})["version"])

    def load(self, name: str, version: int | None = None, framework: str = "pt") -> dict[str, Any]:
        """Download a version (the current one by default), check its sha256, and read it."""
        params = {} if version is None else {"version": version}
        response = self._client._call("GET", f"/v1/weights/{name}/file", params=params, raw=True)
        data = response.content
        if hashlib.sha256(data).hexdigest() != response.headers.get("x-sha256"):
            raise errors.CorruptionError(f"weights {name!r}: the download does not match its sha256")
        return state_from_bytes(data, framework)
