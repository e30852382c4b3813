"""The vector store contract (agentmem.ltm.protocols.VectorStore), run against every registered vector
store: the built-in FAISS one and an outside author's exact numpy store (tests/numpy_store.py), which
is registered through the public plugin hook here and then used through ``Memory``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import agentmem
from agentmem import plugins
from agentmem.errors import NotFoundError
from agentmem.ltm.protocols import VectorStore

sys.path.insert(0, str(Path(__file__).parent))
import numpy_store

plugins.register_plugin(numpy_store, name="numpy-store")  # as an installed plugin's entry point would
VECTOR_STORES = sorted(n for n, e in plugins.registry()["stores"].items() if e.options.get("kind") == "vector")
DIM = 16


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(size=(n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(params=VECTOR_STORES)
def store_cls(request: pytest.FixtureRequest) -> type:
    return plugins.get("stores", request.param).obj


@pytest.fixture
def filled(store_cls: type) -> Iterator[tuple[VectorStore, np.ndarray, list[dict[str, str]]]]:
    rng = np.random.default_rng(3)
    vecs = unit(rng, 300)
    scopes = [{"user": f"u{j % 3}", **({"session": "s"} if j % 2 else {})} for j in range(300)]
    store = store_cls(DIM, ann_threshold=10**9)
    store.add(np.arange(1, 301), vecs, scopes, times=np.arange(300, dtype=np.float64))
    yield store, vecs, scopes
    store.close()


def test_both_stores_are_registered_and_satisfy_the_protocol(store_cls: type) -> None:
    assert {"faiss", "numpy"} <= set(VECTOR_STORES)
    assert isinstance(store_cls(DIM), VectorStore)


def test_search_is_exact_inside_a_scope_a_time_window_and_an_id_list(filled: tuple) -> None:
    store, vecs, scopes = filled
    q = vecs[7]
    for scope, allowed, since, until in [({}, None, None, None), ({"user": "u1"}, None, None, None),
                                         ({"user": "u1", "session": "s"}, None, 50.0, 250.0),
                                         ({"user": "u2"}, np.arange(1, 120), None, None),
                                         ({"user": "nobody"}, None, None, None)]:
        keep = [j for j in range(300) if all(scopes[j].get(k) == v for k, v in scope.items())
                and (allowed is None or j + 1 in set(allowed.tolist()))
                and (since is None or since <= j <= until)]
        want = sorted(keep, key=lambda j: -float(vecs[j] @ q))[:10]
        got = store.search(q, 10, store.mask(scope, allowed, since, until))
        assert [i - 1 for i, _ in got] == want, scope
        assert np.allclose([s for _, s in got], [vecs[j] @ q for j in want], atol=1e-5)
        batch = store.search_batch(np.stack([q, q]), 10, store.mask(scope, allowed, since, until))
        assert [[i for i, _ in b] for b in batch] == [[i for i, _ in got]] * 2


def test_removed_rows_are_gone_from_every_read(filled: tuple) -> None:
    store, vecs, _ = filled
    store.remove([8, 9, 10_000])  # an id never added is ignored
    assert len(store) == 298 and 8 not in store and 7 in store
    assert 8 not in [i for i, _ in store.search(vecs[7], 300)]
    assert 8 not in store.ids().tolist() and len(store.ids()) == 298
    assert store.scores_of([8, 7], vecs[7])[0] == 0.0
    m = store.mask({})
    assert m is not None and 8 not in [i for i, _ in store.search(vecs[7], 300, m)]


def test_scores_samples_and_times(filled: tuple) -> None:
    store, vecs, _ = filled
    q = vecs[0]
    assert np.allclose(store.vectors_of([1, 2]), vecs[:2])
    assert np.allclose(store.scores_of([1, 2], q), vecs[:2] @ q, atol=1e-6)
    mask = store.mask({"user": "u0"})
    sample = store.sample_scores(q, mask, 50)
    assert len(sample) == 50 and set(np.round(sample, 5)) <= set(np.round(vecs[::3] @ q, 5))
    found, again = store.search_and_sample(q, 5, mask, 50, key=(("user", "u0"),))
    assert found == store.search(q, 5, mask) and np.allclose(np.sort(again), np.sort(sample))
    assert store.time_of(11) == 10.0
    store.add(np.array([400]), vecs[:1], [{}])
    assert 400 in store.unknown_times().tolist()
    store.set_times(np.array([400]), np.array([5.0]))
    assert store.time_of(400) == 5.0 and len(store.unknown_times()) == 0


def test_a_saved_store_loads_the_same_and_refuses_another_stores_file(store_cls: type, filled: tuple,
                                                                     tmp_path: Path) -> None:
    store, vecs, _ = filled
    store.remove([3])
    path = tmp_path / "vectors.npz"
    store.save(path)
    store.wait_saved()
    loaded = store_cls.load(path, DIM, ann_threshold=10**9)
    assert sorted(loaded.ids().tolist()) == sorted(store.ids().tolist())
    u2 = {"user": "u2"}
    assert loaded.search(vecs[5], 5, loaded.mask(u2)) == store.search(vecs[5], 5, store.mask(u2))
    with pytest.raises(ValueError):
        store_cls.load(path, DIM + 1)
    other = plugins.get("stores", next(n for n in VECTOR_STORES if plugins.get("stores", n).obj is not store_cls)).obj
    theirs = other(DIM, ann_threshold=10**9)
    theirs.add(np.arange(1, 4), vecs[:3], [{}] * 3)
    foreign = tmp_path / "foreign" / "vectors.npz"
    foreign.parent.mkdir()
    theirs.save(foreign)
    theirs.wait_saved()
    with pytest.raises((ValueError, OSError, RuntimeError)):
        store_cls.load(foreign, DIM)


@pytest.mark.parametrize("name", VECTOR_STORES)
def test_a_memory_works_the_same_on_every_vector_store(tmp_path: Path, name: str) -> None:
    """Through the public API: remember, consolidate, scoped and filtered recall, forget, reopen."""
    path = tmp_path / "m"
    with agentmem.Memory(path, embedder="hash", vector_store=name) as mem:
        a = mem.remember_many(["the ferry leaves at noon", "bread from the market", "a train ticket"],
                              [{"kind": "x"}, {"kind": "y"}, {"kind": "x"}], scope={"user": "ann"})
        b = mem.remember("the ferry to the island", scope={"user": "bob"})
        mem.consolidate()
        assert mem.stats()["vector_store"] == name
        assert mem.recall("ferry", k=5, scope={"user": "ann"})[0].id == a[0]
        assert b not in [h.id for h in mem.recall("ferry", k=5, scope={"user": "ann"})]
        assert {h.id for h in mem.recall("ferry", k=5, scope={"user": "ann"}, filters={"kind": "x"})} <= {a[0], a[2]}
        mem.forget(a[0])
    with agentmem.Memory(path, embedder="hash", vector_store=name) as mem:
        hits = mem.recall("ferry", k=5, scope={"user": "ann"})
        assert a[0] not in [h.id for h in hits] and hits
        assert not mem.notices, mem.notices  # its own file, read back


def test_switching_vector_store_rebuilds_from_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "m"
    with agentmem.Memory(path, embedder="hash") as mem:
        ids = mem.remember_many([f"note {j} about the harbour" for j in range(20)], scope={"user": "u"})
        mem.consolidate()
    with agentmem.Memory(path, embedder="hash", vector_store="numpy") as mem:
        assert mem.notices  # the FAISS store's file is not the numpy store's: rebuilt, and said so
        assert {h.id for h in mem.recall("harbour", k=20, scope={"user": "u"})} == set(ids)


def test_an_unknown_or_wrong_kind_store_is_a_typed_error_naming_the_registered_ones(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"registered vector stores: .*faiss.*numpy"):
        agentmem.Memory(tmp_path / "a", embedder="hash", vector_store="annoy")
    with pytest.raises(NotFoundError, match="is a graph store, not a vector store"):
        agentmem.Memory(tmp_path / "b", embedder="hash", vector_store="networkx")
    with pytest.raises(NotFoundError, match="registered graph stores: networkx"):
        agentmem.Memory(tmp_path / "c", embedder="hash", graph_store="neo4j")
    with agentmem.Memory(tmp_path / "a", embedder="hash") as mem:  # the failed opens left no lock behind
        assert len(mem) == 0
