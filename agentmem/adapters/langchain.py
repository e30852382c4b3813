"""LangChain's ``VectorStore`` and ``BaseRetriever`` over an agentmem ``Memory`` (``agentmem-toolkit[langchain]``).

- :class:`AgentMemVectorStore`: documents are memories of one scope. LangChain's string ids are kept
  in the item's metadata (``_lc_id``, never shown in a returned document) because agentmem's ids are
  integers the database assigns; adding a document under an id that exists replaces it (forget, then
  remember), as LangChain's upsert contract asks. Searches are by vector only (``search_vectors``:
  exact cosines, HNSW past its size), scores are cosines, relevance ``(1 + cosine) / 2``.
- :class:`AgentMemRetriever`: ``recall`` (vector, lexical, time and graph evidence fused) over a
  ``Memory`` or an :class:`agentmem.Client`; each document carries the hit's id, score and evidence.

A LangChain ``Embeddings`` becomes an agentmem embedder (:func:`use_embeddings`), so the memory,
its consolidation and its recall use the same vectors as the chain. Consolidation never merges two
documents of different ids: the built-in merge policy merges only items with equal metadata, and the
id is in it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import VectorStore

import agentmem
from agentmem.embedders import Embedder
from agentmem.errors import NotFoundError

LC_ID = "_lc_id"  # metadata key holding LangChain's id of an item
_EMBEDDINGS: dict[str, tuple[Embeddings, int]] = {}  # embedder name -> the LangChain object it wraps, its dim
_PLUGIN = "agentmem-langchain-embeddings"


class LangChainEmbedder(Embedder):
    """An agentmem embedder computing its vectors with a LangChain ``Embeddings`` (normalised here)."""

    backend = "langchain"

    def __init__(self, name: str, embedding: Embeddings, dim: int) -> None:
        self.name, self._embedding, self._dim = name, embedding, dim

    @property
    def dim(self) -> int:
        return self._dim

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        vecs = np.asarray(self._embedding.embed_documents(list(texts)), dtype=np.float32).reshape(len(texts), self._dim)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs / np.where(norms > 0, norms, 1.0)


class _Plugin:
    """Registers every wrapped ``Embeddings`` under its name."""

    @agentmem.hookimpl
    def register_embedders(self, register: Any) -> None:
        for name, (embedding, dim) in _EMBEDDINGS.items():
            register(name, lambda n=name, e=embedding, d=dim: LangChainEmbedder(n, e, d))


def use_embeddings(embedding: Embeddings, name: str | None = None) -> str:
    """Make ``embedding`` an agentmem embedder and return its name, for ``Memory(path, embedder=name)``.
    The default name (``langchain-<class>-<dim>``) is stable across runs, as a memory records the name
    of its embedder and refuses another; registering a name again points it at the new object."""
    from agentmem import plugins

    dim = len(embedding.embed_query("dimension"))
    name = name or f"langchain-{type(embedding).__name__.lower()}-{dim}"
    _EMBEDDINGS[name] = (embedding, dim)
    if plugins.load_plugins().get_plugin(_PLUGIN) is not None:
        plugins.unregister_plugin(_PLUGIN)
    plugins.register_plugin(_Plugin(), name=_PLUGIN)  # the registry is rebuilt with every name
    return name


def _document(item: Any, lc_id: str | None = None) -> Document:
    meta = dict(item.metadata)
    found = meta.pop(LC_ID, None)
    return Document(page_content=item.text, metadata=meta, id=lc_id or found or str(item.id))


class AgentMemVectorStore(VectorStore):
    """A LangChain vector store whose documents are the memories of ``scope`` in ``memory``.

    ``embedding``: the LangChain embeddings the chain uses; the memory must have been opened with
    the embedder :func:`use_embeddings` made of it (``from_texts`` does both). Without one, the
    memory's own embedder embeds queries and documents."""

    def __init__(self, memory: agentmem.Memory, embedding: Embeddings | None = None,
                 scope: dict[str, str] | None = None) -> None:
        self.memory = memory
        self._embedding = embedding
        self.scope = dict(scope or {})

    @property
    def embeddings(self) -> Embeddings | None:
        return self._embedding

    # --- writing -------------------------------------------------------------------------------

    def _items_of(self, lc_ids: Iterable[str]) -> dict[str, int]:
        """LangChain id -> agentmem id, for those that exist in this store's scope."""
        out: dict[str, int] = {}
        for lc_id in lc_ids:
            found = self.memory.items(self.scope, limit=1, filters={LC_ID: lc_id})
            if found:
                out[lc_id] = found[0].id
        return out

    def add_texts(self, texts: Iterable[str], metadatas: list[dict[str, Any]] | None = None, *,
                  ids: list[str] | None = None, **kwargs: Any) -> list[str]:
        texts = list(texts)
        metas = [dict(m or {}) for m in (metadatas or [{}] * len(texts))]
        given: list[str | None] = list(ids) if ids else [None] * len(texts)  # add_documents may pass None in it
        lc_ids = [i or str(uuid.uuid4()) for i in given]
        if len(metas) != len(texts) or len(lc_ids) != len(texts):
            raise ValueError("texts, metadatas and ids must have equal lengths")
        replaced = self._items_of(lc_ids)
        if replaced:  # upsert: the new content takes the id
            self.memory.forget_many(list(replaced.values()))
        for meta, lc_id in zip(metas, lc_ids, strict=True):
            meta[LC_ID] = lc_id
        vecs = None if self._embedding is None else self._embedding.embed_documents(texts)
        self.memory.remember_many(texts, metas, self.scope or None, embeddings=vecs, progress=False)
        return lc_ids

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Forget the documents with these ids (unknown ids are ignored); True."""
        if ids is None:
            raise ValueError("pass the ids to delete; deleting every document of a memory is Memory.forget_many")
        found = self._items_of(ids)
        if found:
            self.memory.forget_many(list(found.values()))
        return True

    # --- reading -------------------------------------------------------------------------------

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        out = []
        for lc_id, item_id in self._items_of(ids).items():
            try:
                out.append(_document(self.memory.get(item_id), lc_id))
            except NotFoundError:  # forgotten since the lookup
                continue
        return out

    def _vector(self, query: str) -> np.ndarray:
        if self._embedding is not None:
            return np.asarray(self._embedding.embed_query(query), dtype=np.float32)
        return np.asarray(self.memory.embedder.embed(query), dtype=np.float32)

    def similarity_search_by_vector_with_score(self, embedding: Sequence[float] | np.ndarray, k: int = 4,
                                               filter: dict[str, Any] | None = None) -> list[tuple[Document, float]]:
        """The ``k`` documents nearest ``embedding`` by cosine, with the cosine; ``filter``: metadata equalities."""
        hits = self.memory.search_vectors(np.asarray(embedding, dtype=np.float32), k, self.scope or None, filter)[0]
        items = self.memory.get_many([i for i, _ in hits])
        return [(_document(items[i]), float(s)) for i, s in hits if i in items]

    def similarity_search_with_score(self, query: str, k: int = 4, filter: dict[str, Any] | None = None,
                                     **kwargs: Any) -> list[tuple[Document, float]]:
        return self.similarity_search_by_vector_with_score(self._vector(query), k, filter)

    def similarity_search(self, query: str, k: int = 4, filter: dict[str, Any] | None = None,
                          **kwargs: Any) -> list[Document]:
        return [d for d, _ in self.similarity_search_with_score(query, k, filter)]

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, filter: dict[str, Any] | None = None,
                                    **kwargs: Any) -> list[Document]:
        return [d for d, _ in self.similarity_search_by_vector_with_score(embedding, k, filter)]

    def _select_relevance_score_fn(self) -> Any:
        return lambda cosine: (1.0 + cosine) / 2.0

    @classmethod
    def from_texts(cls, texts: list[str], embedding: Embeddings, metadatas: list[dict[str, Any]] | None = None, *,
                   ids: list[str] | None = None, path: str | None = None, scope: dict[str, str] | None = None,
                   **kwargs: Any) -> AgentMemVectorStore:
        """A store over a new or existing memory at ``path`` (default: $AGENTMEM_HOME), embedding with
        ``embedding``, holding ``texts``."""
        memory = agentmem.Memory(path, embedder=use_embeddings(embedding))
        store = cls(memory, embedding, scope)
        store.add_texts(texts, metadatas, ids=list(ids) if ids else None)
        return store


class AgentMemRetriever(BaseRetriever):
    """``recall`` as a LangChain retriever: the ``k`` memories of ``scope`` most relevant to the query,
    by every kind of evidence agentmem fuses. ``memory``: a ``Memory`` or an ``agentmem.Client``."""

    memory: Any
    k: int = 4
    scope: dict[str, str] | None = None
    filters: dict[str, Any] | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                k: int | None = None) -> list[Document]:
        """``k`` (else the retriever's ``k``) memories for ``query`` (``invoke(query, k=3)`` passes it)."""
        hits = self.memory.recall(query, k=k or self.k, scope=self.scope, filters=self.filters)
        out = []
        for h in hits:
            meta = {k: v for k, v in h.metadata.items() if k != LC_ID}
            meta.update(agentmem_id=h.id, score=h.score, evidence=list(h.evidence), scope=h.scope)
            out.append(Document(page_content=h.text, metadata=meta, id=h.metadata.get(LC_ID) or str(h.id)))
        return out
