"""The LangGraph store: the same scenarios run against LangGraph's own ``InMemoryStore`` and against
:class:`AgentMemStore`, and their answers compared wherever the semantics are defined (put, get,
update, delete, filters, namespace listing, paging, batch and async). Where they differ by design
(search order without a query, recall scores) the test says so and compares what is defined."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langgraph", reason="the LangGraph extra: pip install 'agentmem-toolkit[langgraph]'")

import itertools

from langgraph.store.base import BaseStore, GetOp, PutOp, SearchOp
from langgraph.store.memory import InMemoryStore

import agentmem
from agentmem.adapters.langgraph import AgentMemStore

DATA = [
    (("alice", "notes"), "n1", {"text": "parks on level 3", "kind": "car"}),
    (("alice", "notes"), "n2", {"text": "locker 41 at the gym", "kind": "gym"}),
    (("alice", "prefs"), "p1", {"text": "likes green tea", "kind": "food"}),
    (("alice", "prefs", "work"), "p2", {"text": "standing desk", "kind": "desk"}),
    (("bob", "notes"), "n1", {"text": "parks in the street", "kind": "car"}),
    (("bob", "notes"), "n3", {"done": True}),
    (("bob", "todo"), "t1", {"done": True}),  # the same value under another key and namespace
]


def fill(store: BaseStore) -> None:
    for ns, key, value in DATA:
        store.put(ns, key, value)


def view(items: list[Any]) -> list[tuple[tuple[str, ...], str, dict[str, Any]]]:
    return sorted((tuple(i.namespace), i.key, i.value) for i in items)


@pytest.fixture
def stores(tmp_path: Path) -> Any:
    mem = agentmem.Memory(tmp_path / "m", embedder="hash")
    ours, theirs = AgentMemStore(mem), InMemoryStore()
    fill(ours)
    fill(theirs)
    yield ours, theirs
    mem.close()


def test_get_put_update_delete_agree(stores: Any) -> None:
    ours, theirs = stores
    for ns, key, _ in [*DATA, (("alice", "notes"), "missing", None), (("carol", "x"), "n1", None)]:
        a, b = ours.get(ns, key), theirs.get(ns, key)
        assert (a is None) == (b is None), (ns, key)
        if a is not None:
            assert (a.namespace, a.key, a.value) == (b.namespace, b.key, b.value)
    before = ours.get(("alice", "notes"), "n1")
    for store in stores:
        store.put(("alice", "notes"), "n1", {"text": "parks on level 4 now", "kind": "car"})
        store.delete(("alice", "notes"), "n2")
    a, b = ours.get(("alice", "notes"), "n1"), theirs.get(("alice", "notes"), "n1")
    assert a.value == b.value == {"text": "parks on level 4 now", "kind": "car"}
    assert a.created_at == before.created_at and a.updated_at >= before.updated_at  # as InMemoryStore keeps them
    assert ours.get(("alice", "notes"), "n2") is None and theirs.get(("alice", "notes"), "n2") is None
    assert ours.get(("bob", "notes"), "n3").value == ours.get(("bob", "todo"), "t1").value == {"done": True}


def test_search_by_namespace_prefix_and_filter_agree(stores: Any) -> None:
    ours, theirs = stores
    for prefix, filter_ in ((("alice",), None), (("alice", "notes"), None), (("alice", "prefs"), None),
                            (("bob",), {"done": True}), (("alice",), {"kind": "car"}), ((), {"kind": "car"}),
                            (("alice",), {"kind": {"$eq": "gym"}}), (("nobody",), None)):
        a = ours.search(prefix, filter=filter_, limit=20)
        b = theirs.search(prefix, filter=filter_, limit=20)
        # both return the same items; without a query the order is undefined by the interface
        # (InMemoryStore: insertion order; agentmem: newest first)
        assert view(a) == view(b), (prefix, filter_)
    pages = [{(i.namespace, i.key) for i in ours.search(("alice",), limit=2, offset=o)} for o in (0, 2)]
    assert len(pages[0]) == len(pages[1]) == 2 and not pages[0] & pages[1]  # paging: no item twice
    assert pages[0] | pages[1] == {(i.namespace, i.key) for i in theirs.search(("alice",), limit=20)}
    with pytest.raises(ValueError, match="equality"):
        ours.search(("alice",), filter={"kind": {"$gt": "a"}})


def test_list_namespaces_agrees(stores: Any) -> None:
    ours, theirs = stores
    for kw in ({}, {"prefix": ("alice",)}, {"suffix": ("notes",)}, {"max_depth": 1}, {"prefix": ("alice",),
               "max_depth": 2}, {"limit": 2}, {"limit": 2, "offset": 2}, {"prefix": ("alice", "*")}):
        assert ours.list_namespaces(**kw) == theirs.list_namespaces(**kw), kw


def test_batch_and_async_agree(stores: Any) -> None:
    ours, theirs = stores
    ops = [GetOp(("alice", "prefs"), "p1"), PutOp(("carol", "notes"), "c1", {"text": "new"}),
           GetOp(("carol", "notes"), "c1"), SearchOp(("carol",), limit=5)]
    a, b = ours.batch(ops), theirs.batch(ops)
    assert a[0].value == b[0].value and a[1] is None and b[1] is None
    assert a[2] is None and b[2] is None and a[3] == b[3] == []  # a batch's reads see the store before it
    assert ours.get(("carol", "notes"), "c1").value == theirs.get(("carol", "notes"), "c1").value == {"text": "new"}
    twice = [PutOp(("carol", "notes"), "c2", {"v": 1}), PutOp(("carol", "notes"), "c2", {"v": 2})]
    ours.batch(twice), theirs.batch(twice)
    assert ours.get(("carol", "notes"), "c2").value == theirs.get(("carol", "notes"), "c2").value == {"v": 2}
    got = asyncio.run(ours.aget(("carol", "notes"), "c1"))
    assert got is not None and got.value == {"text": "new"}
    assert view(asyncio.run(ours.asearch(("carol",)))) == view(theirs.search(("carol",)))


def test_search_with_a_query_is_recall_and_finds_the_same_best_item(tmp_path: Path) -> None:
    """InMemoryStore ranks by the cosine of embedded fields; agentmem by recall (vector, lexical, time
    fused). Given the same embedder, both put the clearly best item first; scores differ in kind."""
    with agentmem.Memory(tmp_path / "m", embedder="hash") as mem:
        embed = mem.embedder
        ours = AgentMemStore(mem)
        theirs = InMemoryStore(index={"dims": mem.dim, "embed": lambda texts: embed.embed_batch(texts).tolist(),
                                      "fields": ["text"]})
        notes = ["the meter reading was 4312 units in March", "the dentist appointment moved to Friday",
                 "the garden needs watering twice a week"]
        for n, text in enumerate(notes):
            for store in (ours, theirs):
                store.put(("alice", "notes"), f"k{n}", {"text": text}, index=["text"])
        for q, best in (("when is the dentist appointment?", "k1"), ("meter reading units", "k0"),
                        ("watering the garden", "k2")):
            a, b = ours.search(("alice",), query=q, limit=3), theirs.search(("alice",), query=q, limit=3)
            assert a[0].key == b[0].key == best, q
            assert a[0].score is not None and all(x.score >= y.score for x, y in itertools.pairwise(a))


def test_namespaces_are_scopes_and_a_key_never_reaches_another_user(tmp_path: Path) -> None:
    pytest.importorskip("fastapi", reason="the server extra: pip install 'agentmem-toolkit[serve]'")
    from servers import Server, keys, make_memory

    make_memory(tmp_path / "m")
    server = Server(tmp_path / "m")
    try:
        alice, bob = keys(server.path, "--user", "alice"), keys(server.path, "--user", "bob")
        with agentmem.Client(server.url, alice["key"]) as a, agentmem.Client(server.url, bob["key"]) as b:
            mine, theirs = AgentMemStore(a), AgentMemStore(b)
            mine.put(("alice", "notes"), "n1", {"text": "alice's locker is 41"})
            theirs.put(("bob", "notes"), "n1", {"text": "bob's PIN is 4321"})
            assert mine.get(("alice", "notes"), "n1").value == {"text": "alice's locker is 41"}
            assert [i.key for i in mine.search(("alice",), query="locker")] == ["n1"]
            with pytest.raises(agentmem.errors.ScopeDeniedError):
                mine.get(("bob", "notes"), "n1")
            with pytest.raises(agentmem.errors.ScopeDeniedError):
                mine.put(("bob", "notes"), "planted", {"text": "x"})
            with pytest.raises(agentmem.errors.ScopeDeniedError):
                mine.search(("bob",), query="PIN")
        with agentmem.Client(server.url, keys(server.path, "--admin")["key"]) as root:
            assert [i.scope for i in root.items({"user": "bob"})] == [{"user": "bob"}]  # a memory of bob's scope
    finally:
        server.stop()


def test_listings_page_through_every_item(stores: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import agentmem.adapters.langgraph as lg

    monkeypatch.setattr(lg, "PAGE", 2)  # DATA spans several pages now
    ours, theirs = stores
    assert ours.list_namespaces() == theirs.list_namespaces()
    assert view(ours.search(("alice",), limit=20)) == view(theirs.search(("alice",), limit=20))
    assert view(ours.search(("alice",), limit=3, offset=1)) == view(ours.search(("alice",), limit=20)[1:4])
