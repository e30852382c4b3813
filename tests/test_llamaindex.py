"""The LlamaIndex adapters. LlamaIndex has no shared test suite, so these contract tests follow
LangChain's standard vector-store cases as the checklist (empty store, add, upsert by id, delete by
document and by node, get by ids with missing ones, filters, no mutation of the caller's nodes), then
run a real ``VectorStoreIndex`` over the store, the retriever and the memory block."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("llama_index.core", reason="the LlamaIndex extra: pip install 'agentmem-toolkit[llamaindex]'")

from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)

import agentmem
from agentmem.adapters.llamaindex import (
    AgentMemEmbedding,
    AgentMemMemoryBlock,
    AgentMemRetriever,
    AgentMemVectorStore,
)


@pytest.fixture
def memory(tmp_path: Path) -> Any:
    with agentmem.Memory(tmp_path / "m", embedder="hash") as mem:
        yield mem


def node(node_id: str, text: str, embed: Any, doc: str | None = None, **meta: Any) -> TextNode:
    n = TextNode(id_=node_id, text=text, metadata=meta, embedding=[float(x) for x in embed.embed(text)])
    if doc:
        n.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=doc)
    return n


def near(store: AgentMemVectorStore, embed: Any, text: str, k: int = 2, **kw: Any) -> list[str]:
    result = store.query(VectorStoreQuery(query_embedding=[float(x) for x in embed.embed(text)], similarity_top_k=k,
                                          **kw))
    assert len(result.nodes) == len(result.similarities) == len(result.ids)
    return [n.text for n in result.nodes]


def test_the_vector_store_contract(memory: Any) -> None:
    embed = memory.embedder
    store = AgentMemVectorStore(memory, scope={"user": "u1"})
    assert near(store, embed, "foo") == []  # empty
    nodes = [node("1", "foo", embed, doc="d1", id=1), node("2", "bar", embed, doc="d1", id=2),
             node("3", "baz", embed, doc="d2", id=3)]
    before = [n.model_copy(deep=True) for n in nodes]
    assert store.add(nodes) == ["1", "2", "3"]
    assert [n.metadata for n in nodes] == [b.metadata for b in before]  # the caller's nodes are not changed
    result = store.query(VectorStoreQuery(query_embedding=[float(x) for x in embed.embed("bar")], similarity_top_k=2))
    assert result.ids[0] == "2" and result.nodes[0].metadata == {"id": 2}  # no internal keys shown
    assert result.similarities[0] == pytest.approx(1.0, abs=1e-5)
    store.add([node("1", "new foo", embed, doc="d1", id=1, other="x")])  # upsert by node id
    assert sorted(n.text for n in store.get_nodes(["1", "2", "3", "missing"])) == ["bar", "baz", "new foo"]
    assert store.get_nodes(["missing"]) == []
    assert [n.metadata for n in store.get_nodes(["1"])] == [{"id": 1, "other": "x"}]
    eq = MetadataFilters(filters=[MetadataFilter(key="id", value=3)])
    assert near(store, embed, "foo", k=3, filters=eq) == ["baz"]
    assert [n.text for n in store.get_nodes(filters=eq)] == ["baz"]
    with pytest.raises(NotImplementedError, match="equalities"):
        near(store, embed, "foo", filters=MetadataFilters(filters=[MetadataFilter(key="id", value=1,
                                                                                   operator=FilterOperator.GT)]))
    store.delete("d1")  # every node of document d1
    assert [n.text for n in store.get_nodes(["1", "2", "3"])] == ["baz"]
    store.delete("no such document")  # not an error
    store.delete_nodes(["3", "missing"])
    assert near(store, embed, "baz", k=3) == []
    store.add([node("4", "qux", embed)])
    other = AgentMemVectorStore(memory, scope={"user": "u2"})
    other.add([node("4", "u2's qux", embed)])  # the same node id in another scope: another node
    assert near(store, embed, "qux", k=5) == ["qux"] and near(other, embed, "qux", k=5) == ["u2's qux"]
    store.clear()
    assert near(store, embed, "qux", k=5) == [] and near(other, embed, "qux", k=5) == ["u2's qux"]


def test_a_vector_store_index_over_the_store_answers_a_retriever_query(memory: Any) -> None:
    store = AgentMemVectorStore(memory, scope={"user": "u1"})
    docs = [Document(text="Caroline went to the LGBTQ support group on 7 May 2023.", doc_id="a"),
            Document(text="Melanie painted a lake at sunrise last year.", doc_id="b"),
            Document(text="Caroline is researching adoption agencies.", doc_id="c")]
    index = VectorStoreIndex.from_documents(docs, storage_context=StorageContext.from_defaults(vector_store=store),
                                            embed_model=AgentMemEmbedding("hash"))
    found = index.as_retriever(similarity_top_k=1).retrieve("Who painted a lake at sunrise?")
    assert [n.node.get_content() for n in found] == [docs[1].text]
    index.delete_ref_doc("b")
    found = index.as_retriever(similarity_top_k=3).retrieve("Who painted a lake at sunrise?")
    assert docs[1].text not in [n.node.get_content() for n in found]


def test_the_retriever_and_the_memory_block(memory: Any) -> None:
    memory.remember_many(["Caroline went to the support group on 7 May 2023", "Melanie painted a lake at sunrise"],
                         scope={"user": "u1"})
    memory.remember("u2's own note about the support group", scope={"user": "u2"})
    hits = AgentMemRetriever(memory, k=1, scope={"user": "u1"}).retrieve("When did Caroline go to the support group?")
    assert [h.node.get_content() for h in hits] == ["Caroline went to the support group on 7 May 2023"]
    assert hits[0].score is not None and "vector" in hits[0].node.metadata["evidence"]
    block = AgentMemMemoryBlock(memory, scope={"user": "u1"}, k=2)
    asyncio.run(block.aput([ChatMessage(role="user", content="My locker at the gym is number 41."),
                            ChatMessage(role="assistant", content="")]))
    got = asyncio.run(block.aget([ChatMessage(role="user", content="what is my locker number at the gym?")]))
    assert got.splitlines()[0] == "My locker at the gym is number 41." and "u2's" not in got
    assert asyncio.run(block.aget([])) == ""


def test_the_vector_store_over_a_client(tmp_path: Path) -> None:
    pytest.importorskip("fastapi", reason="the server extra: pip install 'agentmem-toolkit[serve]'")
    from servers import Server, keys, make_memory

    make_memory(tmp_path / "m")
    server = Server(tmp_path / "m")
    try:
        key = keys(server.path, "--user", "u1")["key"]
        embed = agentmem.plugins.get_embedder("hash")
        with agentmem.Client(server.url, key) as client:
            store = AgentMemVectorStore(client, scope={"user": "u1"})
            store.add([node("1", "foo", embed, doc="d1"), node("2", "bar", embed, doc="d2")])
            assert near(store, embed, "bar", k=2) == ["bar", "foo"]
            store.delete("d2")
            assert [n.text for n in store.get_nodes(["1", "2"])] == ["foo"]
    finally:
        server.stop()


def test_whole_document_deletes_and_listings_page_through(memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import agentmem.adapters.llamaindex as li

    monkeypatch.setattr(li, "BATCH", 2)
    embed = memory.embedder
    store = AgentMemVectorStore(memory, scope={"user": "u1"})
    store.add([node(str(n), f"chunk {n} of the report", embed, doc="report") for n in range(7)])
    store.add([node("x", "another document", embed, doc="other")])
    assert len(store.get_nodes()) == 8
    store.delete("report")  # seven nodes over four pages
    assert [n.text for n in store.get_nodes()] == ["another document"]
