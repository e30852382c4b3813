"""The LangChain adapters against LangChain's own standard suites (``langchain-tests``), unmodified:
``VectorStoreIntegrationTests`` on :class:`AgentMemVectorStore` (with the suite's deterministic fake
embeddings, made an agentmem embedder) and ``RetrieversIntegrationTests`` on :class:`AgentMemRetriever`
over a local Memory and over a live server's Client. Then what the suites do not check: scopes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_core", reason="the LangChain extra: pip install 'agentmem-toolkit[langchain]'")
pytest.importorskip("langchain_tests", reason="LangChain's standard tests: pip install langchain-tests")

from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import RetrieversIntegrationTests, VectorStoreIntegrationTests

import agentmem
from agentmem.adapters.langchain import AgentMemRetriever, AgentMemVectorStore, use_embeddings

NOTES = ["Caroline went to the support group on 7 May 2023", "Melanie painted a lake at sunrise",
         "Caroline is researching adoption agencies", "Melanie ran a charity race for mental health",
         "the support group meets every Tuesday evening"]


class TestVectorStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, tmp_path: Path) -> Iterator[VectorStore]:  # type: ignore[override]
        embedding = self.get_embeddings()
        mem = agentmem.Memory(tmp_path / "m", embedder=use_embeddings(embedding))
        try:
            yield AgentMemVectorStore(mem, embedding, scope={"user": "lc"})
        finally:
            mem.close()


@pytest.fixture(scope="module")
def notes_memory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[agentmem.Memory]:
    mem = agentmem.Memory(tmp_path_factory.mktemp("retriever") / "m", embedder="hash")
    mem.remember_many(NOTES, scope={"user": "u1"})
    yield mem
    mem.close()


class TestRetrieverStandard(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _memory(self, notes_memory: agentmem.Memory) -> None:
        self.mem = notes_memory

    @property
    def retriever_constructor(self) -> type[AgentMemRetriever]:
        return AgentMemRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"memory": self.mem, "scope": {"user": "u1"}}

    @property
    def retriever_query_example(self) -> str:
        return "When did Caroline go to the support group?"


def test_the_store_keeps_to_its_scope_and_finds_by_metadata(tmp_path: Path) -> None:
    embedding = DeterministicFakeEmbedding(size=8)
    with agentmem.Memory(tmp_path / "m", embedder=use_embeddings(embedding)) as mem:
        alice = AgentMemVectorStore(mem, embedding, scope={"user": "alice"})
        bob = AgentMemVectorStore(mem, embedding, scope={"user": "bob"})
        alice.add_texts(["alice's red folder", "alice's blue pen"], [{"kind": "folder"}, {"kind": "pen"}],
                        ids=["a", "b"])
        bob.add_texts(["bob's red folder"], ids=["a"])  # the same LangChain id in another scope: another document
        assert [d.page_content for d in bob.similarity_search("red folder", k=5)] == ["bob's red folder"]
        assert [d.id for d in alice.similarity_search("red folder", k=5)] == ["a", "b"]
        assert alice.similarity_search("pen", k=5, filter={"kind": "pen"}) == [
            Document(id="b", page_content="alice's blue pen", metadata={"kind": "pen"})]
        assert [d.page_content for d in bob.get_by_ids(["a", "b"])] == ["bob's red folder"]
        bob.delete(["a", "b"])
        assert bob.similarity_search("folder", k=5) == [] and len(alice.get_by_ids(["a", "b"])) == 2
        scored = alice.similarity_search_with_relevance_scores("alice's red folder", k=1)
        assert scored[0][0].id == "a" and scored[0][1] == pytest.approx(1.0, abs=1e-5)
        with pytest.raises(ValueError, match="ids"):
            alice.delete()


def test_the_retriever_over_a_client_of_a_live_server(tmp_path: Path) -> None:
    pytest.importorskip("fastapi", reason="the server extra: pip install 'agentmem-toolkit[serve]'")
    from servers import Server, make_memory

    make_memory(tmp_path / "m")
    server = Server(tmp_path / "m")
    try:
        with agentmem.Client(server.url) as client:
            client.remember_many(NOTES, scope={"user": "u1"})
            client.remember("Caroline's secret diary entry", scope={"user": "u2"})
            docs = AgentMemRetriever(memory=client, k=2, scope={"user": "u1"}).invoke("Caroline support group")
            assert docs[0].page_content == NOTES[0] and len(docs) == 2
            assert docs[0].metadata["scope"] == {"user": "u1"} and "vector" in docs[0].metadata["evidence"]
    finally:
        server.stop()


def test_the_vector_store_over_a_client_keeps_to_the_keys_scope(tmp_path: Path) -> None:
    pytest.importorskip("fastapi", reason="the server extra: pip install 'agentmem-toolkit[serve]'")
    from servers import Server, keys, make_memory

    make_memory(tmp_path / "m")  # the hashing embedder: 256 dimensions
    server = Server(tmp_path / "m")
    embedding = DeterministicFakeEmbedding(size=256)
    try:
        alice, bob = keys(server.path, "--user", "alice"), keys(server.path, "--user", "bob")
        with agentmem.Client(server.url, alice["key"]) as a, agentmem.Client(server.url, bob["key"]) as b:
            mine = AgentMemVectorStore(a, embedding, scope={"user": "alice"})
            theirs = AgentMemVectorStore(b, embedding, scope={"user": "bob"})
            assert mine.add_texts(["alice's red folder", "alice's blue pen"], ids=["f", "p"]) == ["f", "p"]
            theirs.add_texts(["bob's PIN is 4321"], ids=["pin"])
            assert [d.id for d in mine.similarity_search("alice's blue pen", k=5)] == ["p", "f"]
            assert mine.get_by_ids(["pin", "f"]) == [Document(id="f", page_content="alice's red folder", metadata={})]
            mine.add_texts(["alice's green folder"], ids=["f"])  # upsert over HTTP too
            assert [d.page_content for d in mine.get_by_ids(["f"])] == ["alice's green folder"]
            mine.delete(["p", "pin"])  # bob's id is not alice's to delete
            assert [d.id for d in theirs.similarity_search("PIN", k=5)] == ["pin"]
            with pytest.raises(agentmem.errors.ScopeDeniedError):
                AgentMemVectorStore(a, embedding, scope={"user": "bob"}).similarity_search("PIN", k=5)
    finally:
        server.stop()
