"""LlamaIndex over an agentmem ``Memory`` (``agentmem-toolkit[llamaindex]``).

- :class:`AgentMemVectorStore` (``BasePydanticVectorStore``, ``stores_text``): nodes are memories of
  one scope. A node's id and its source document's id (``ref_doc_id``) are kept in the item's
  metadata (``_li_id``, ``_li_ref``) since agentmem's ids are integers; adding a node whose id exists
  replaces it. Queries are by vector (the index embeds the query): exact cosines, HNSW past its size.
  Metadata filters: equalities (``==``) joined by AND; anything else is ``NotImplementedError``.
- :class:`AgentMemRetriever` (``BaseRetriever``): agentmem's ``recall`` (every kind of evidence fused)
  over a ``Memory`` or an :class:`agentmem.Client`; ``NodeWithScore`` with the recall score.
- :class:`AgentMemMemoryBlock` (``BaseMemoryBlock``): a memory block for LlamaIndex's ``Memory``: ``put``
  remembers the messages' text, ``get`` recalls what is relevant to the latest messages as one text.
- :class:`AgentMemEmbedding` (``BaseEmbedding``): an agentmem embedder as a LlamaIndex embed model
  (offline MiniLM, or the model-free ``hash`` for tests).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.memory.memory import BaseMemoryBlock
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import BaseNode, MetadataMode, NodeWithScore, QueryBundle, TextNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryResult,
)
from pydantic import Field, PrivateAttr

LI_ID, LI_REF = "_li_id", "_li_ref"  # metadata keys: the node's id, its source document's id
BATCH = 1_000  # items read per lookup page when deleting a whole document


def _filters(filters: MetadataFilters | None) -> dict[str, Any] | None:
    """LlamaIndex metadata filters as agentmem's (metadata equalities)."""
    if filters is None or not filters.filters:
        return None
    if filters.condition not in (None, FilterCondition.AND):
        raise NotImplementedError("agentmem's filters are equalities joined by AND; OR and NOT are not supported")
    out: dict[str, Any] = {}
    for f in filters.filters:
        if isinstance(f, MetadataFilters) or f.operator != FilterOperator.EQ:
            raise NotImplementedError(f"agentmem's filters are equalities (==); got {f!r}")
        out[f.key] = f.value
    return out


def _node(item: Any) -> TextNode:
    meta = {k: v for k, v in item.metadata.items() if k not in (LI_ID, LI_REF)}
    node = TextNode(id_=item.metadata.get(LI_ID) or str(item.id), text=item.text, metadata=meta)
    return node


class AgentMemVectorStore(BasePydanticVectorStore):
    """A LlamaIndex vector store whose nodes are the memories of ``scope`` in ``memory`` (a ``Memory``
    whose embedder has the index's embed model's dimension)."""

    stores_text: bool = True
    scope: dict[str, str] = Field(default_factory=dict)
    _memory: Any = PrivateAttr()

    def __init__(self, memory: Any, scope: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(scope=dict(scope or {}), **kwargs)  # type: ignore[call-arg]  # a field declared here
        self._memory = memory

    @property
    def client(self) -> Any:
        return self._memory

    def _items_where(self, filters: dict[str, Any]) -> list[Any]:
        """Every item of this store's scope passing ``filters``, page by page."""
        out: list[Any] = []
        before: int | None = None
        while True:
            page = self._memory.items(self.scope, limit=BATCH, before=before, filters=filters or None)
            out += page
            if len(page) < BATCH:
                return out
            before = page[-1].id

    def _ids_where(self, filters: dict[str, Any]) -> list[int]:
        return [i.id for i in self._items_where(filters)]

    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Remember the nodes (with the embeddings the index gave them); their ids."""
        if not nodes:
            return []
        ids = [n.node_id or str(uuid.uuid4()) for n in nodes]
        replaced = [i for node_id in ids for i in self._ids_where({LI_ID: node_id})]
        if replaced:
            self._memory.forget_many(replaced)
        texts = [n.get_content(metadata_mode=MetadataMode.NONE) for n in nodes]
        metas = [{**n.metadata, LI_ID: node_id, **({LI_REF: n.ref_doc_id} if n.ref_doc_id else {})}
                 for n, node_id in zip(nodes, ids, strict=True)]
        given = [n.embedding for n in nodes]
        vecs = np.asarray(given, dtype=np.float32) if all(v is not None for v in given) else None
        self._memory.remember_many(texts, metas, self.scope or None, embeddings=vecs, progress=False)
        return ids

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Forget every node of the source document ``ref_doc_id``."""
        doomed = self._ids_where({LI_REF: ref_doc_id})
        if doomed:
            self._memory.forget_many(doomed)

    def delete_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None,
                     **delete_kwargs: Any) -> None:
        doomed = [n.metadata.get("_agentmem_id") for n in self._matching(node_ids, filters)]
        if doomed:
            self._memory.forget_many([int(i) for i in doomed if i is not None])

    def clear(self) -> None:
        """Forget every node of this store's scope."""
        doomed = self._ids_where({})
        if doomed:
            self._memory.forget_many(doomed)

    def _matching(self, node_ids: list[str] | None, filters: MetadataFilters | None) -> list[TextNode]:
        wanted = _filters(filters) or {}
        items = ([i for node_id in node_ids for i in self._memory.items(self.scope, limit=1,
                                                                       filters={**wanted, LI_ID: node_id})]
                 if node_ids is not None else
                 self._items_where(wanted))
        out = []
        for item in items:
            node = _node(item)
            node.metadata["_agentmem_id"] = item.id
            out.append(node)
        return out

    def get_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None) -> list[BaseNode]:
        nodes = self._matching(node_ids, filters)
        for node in nodes:
            node.metadata.pop("_agentmem_id", None)
        return list(nodes)

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """The ``similarity_top_k`` nodes nearest ``query.query_embedding`` (cosines as similarities)."""
        if query.query_embedding is None:
            raise ValueError("agentmem's LlamaIndex store is queried by embedding; use AgentMemRetriever for text")
        filters = _filters(query.filters)
        hits = self._memory.search_vectors(np.asarray(query.query_embedding, dtype=np.float32),
                                           query.similarity_top_k, self.scope or None, filters)[0]
        items = self._memory.get_many([i for i, _ in hits])
        kept = [(items[i], s) for i, s in hits if i in items]
        nodes = [_node(item) for item, _ in kept]
        return VectorStoreQueryResult(nodes=nodes, similarities=[float(s) for _, s in kept],
                                      ids=[n.node_id for n in nodes])


class AgentMemRetriever(BaseRetriever):
    """``recall`` as a LlamaIndex retriever (``memory``: a ``Memory`` or an ``agentmem.Client``)."""

    def __init__(self, memory: Any, k: int = 4, scope: dict[str, str] | None = None,
                 filters: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._memory, self._k, self._scope, self._filters = memory, k, scope, filters

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self._memory.recall(query_bundle.query_str, k=self._k, scope=self._scope, filters=self._filters)
        out = []
        for h in hits:
            meta = {k: v for k, v in h.metadata.items() if k not in (LI_ID, LI_REF)}
            meta.update(agentmem_id=h.id, evidence=list(h.evidence))
            out.append(NodeWithScore(node=TextNode(id_=h.metadata.get(LI_ID) or str(h.id), text=h.text, metadata=meta),
                                     score=h.score))
        return out


class AgentMemMemoryBlock(BaseMemoryBlock[str]):
    """Long-term memory for LlamaIndex's ``Memory``: messages put here are remembered in ``scope``; a
    get recalls the ``k`` memories most relevant to the latest messages, one per line."""

    name: str = "agentmem"
    description: str | None = "Relevant memories recalled from agentmem"
    k: int = 5
    scope: dict[str, str] | None = None
    _memory: Any = PrivateAttr()

    def __init__(self, memory: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._memory = memory

    async def _aget(self, messages: list[ChatMessage] | None = None, **block_kwargs: Any) -> str:
        query = " ".join(m.content or "" for m in (messages or [])[-3:]).strip()
        if not query:
            return ""
        return "\n".join(h.text for h in self._memory.recall(query, k=self.k, scope=self.scope))

    async def _aput(self, messages: list[ChatMessage]) -> None:
        texts = [m.content for m in messages if m.content and m.content.strip()]
        if texts:
            self._memory.remember_many(texts, [{"role": str(m.role.value)} for m in messages if m.content
                                               and m.content.strip()], self.scope)


class AgentMemEmbedding(BaseEmbedding):
    """An agentmem embedder (``name``: ``minilm``, ``hash``, or any registered) as a LlamaIndex embed model."""

    embedder_name: str = "minilm"
    _embedder: Any = PrivateAttr()

    def __init__(self, embedder_name: str = "minilm", **kwargs: Any) -> None:
        super().__init__(embedder_name=embedder_name, model_name=f"agentmem-{embedder_name}",  # type: ignore[call-arg]
                         **kwargs)
        from agentmem.plugins import get_embedder

        self._embedder = get_embedder(embedder_name)

    def _get_query_embedding(self, query: str) -> list[float]:
        return [float(x) for x in self._embedder.embed(query)]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_query_embedding(text)

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in row] for row in self._embedder.embed_batch(texts)]
