"""The DESIGN.md public API, end to end, on the default embedder."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

import agentmem
from agentmem import errors


def test_design_api_script(tmp_path: Path) -> None:
    """remember 1,000 items, exact item at rank 1, consolidate, graph, weights, forget, reopen."""
    torch = pytest.importorskip("torch")
    path = tmp_path / "memdir"
    texts = [f"Order {n} shipped to warehouse {n % 13} on day {n % 29}" for n in range(1000)]
    with agentmem.Memory(path) as mem:
        ids = mem.remember_many(texts, metadatas=[{"n": n} for n in range(1000)], scope={"user": "u1"})
        assert len(ids) == len(set(ids)) == 1000
        caroline = mem.remember("Caroline went to the support group on 7 May 2023",
                                metadata={"speaker": "Caroline", "session": 1}, scope={"user": "u1"})
        hits = mem.recall("Order 417 shipped to warehouse 1 on day 11", k=5, scope={"user": "u1"})
        assert hits[0].id == ids[417] and hits[0].text == texts[417]
        assert hits[0].metadata == {"n": 417}
        mem.consolidate()
        assert len(mem.stm) == 0
        hits = mem.recall("When did Caroline go to the support group?", k=3, scope={"user": "u1"})
        assert hits[0].id == caroline and hits[0].source == "ltm"
        mem.graph.add_fact("Caroline", "attended", "support group", item=caroline)
        assert agentmem.Fact("Caroline", "attended", "support group", caroline) in mem.graph.facts("Caroline")
        model = torch.nn.Linear(4, 2)
        v = mem.weights.save("lenet5", model.state_dict(), metadata={"acc": 0.91})
        assert v == 1
        gone = ids[5]
        mem.forget(gone)
        assert all(h.id != gone for h in mem.recall(texts[5], k=20, scope={"user": "u1"}))
        assert gone not in [i for i, _ in mem.journal.text.lexical(texts[5], 50, {"user": "u1"})]
    with agentmem.Memory(path) as mem:
        assert mem.stats()["items"] == 1000  # 1000 + Caroline - forgotten
        assert mem.recall(texts[900], k=1, scope={"user": "u1"})[0].id == ids[900]
        assert [f.item for f in mem.graph.facts("Caroline", relation="attended")] == [caroline]
        state = mem.weights.load("lenet5")
        assert torch.equal(state["weight"], model.state_dict()["weight"])
        assert [w.metadata for w in mem.weights.versions("lenet5")] == [{"acc": 0.91}]
        with pytest.raises(errors.NotFoundError):
            mem.get(gone)


def test_recall_sees_stm_before_consolidation(mem: agentmem.Memory) -> None:
    i = mem.remember("The spare key is under the blue flowerpot")
    hits = mem.recall("where is the spare key?", k=1)
    assert hits[0].id == i and hits[0].source == "stm"
    mem.consolidate()
    assert mem.recall("where is the spare key?", k=1)[0].source == "ltm"


def test_scopes_are_partitions(mem: agentmem.Memory) -> None:
    a = mem.remember("my bank PIN is 4321", scope={"user": "alice"})
    b = mem.remember("my bank PIN is 9876", scope={"user": "bob"})
    for _ in range(2):  # in STM, then in LTM
        hits = mem.recall("bank PIN", k=10, scope={"user": "alice"})
        assert [h.id for h in hits] == [a]
        assert [h.id for h in mem.recall("bank PIN", k=10, scope={"user": "bob"})] == [b]
        assert mem.recall("bank PIN", k=10, scope={"user": "carol"}) == []
        mem.consolidate()
    s = mem.remember("session note", scope={"user": "alice", "session": "s1"})
    assert s in [h.id for h in mem.recall("session note", scope={"user": "alice"})]
    assert mem.recall("session note", scope={"user": "alice", "session": "s2"}) == []


def test_filters_and_time(mem: agentmem.Memory) -> None:
    old = mem.remember("meeting with the dentist", metadata={"kind": "health"}, time="2023-01-05")
    new = mem.remember("meeting with the accountant", metadata={"kind": "money"}, time="2024-03-01T09:00")
    assert [h.id for h in mem.recall("meeting", k=5, filters={"kind": "money"})] == [new]
    assert [h.id for h in mem.recall("meeting", k=5, until="2023-12-31")] == [old]
    mem.consolidate()
    assert [h.id for h in mem.recall("meeting", k=5, since="2024-01-01")] == [new]
    assert [h.id for h in mem.recall("meeting", k=5, filters={"kind": "health"})] == [old]
    assert mem.get(new).event_time is not None


def test_dedup_merges_identical_and_counts(mem: agentmem.Memory) -> None:
    a = mem.remember("I love hiking in the mountains", metadata={"speaker": "Ann"})
    b = mem.remember("I love hiking in the mountains", metadata={"speaker": "Ann"})
    c = mem.remember("I love hiking in the mountains!", metadata={"speaker": "Ann"})
    d = mem.remember("Room 517 is booked", metadata={"speaker": "Ann"})
    e = mem.remember("Room 571 is booked", metadata={"speaker": "Ann"})
    report = mem.consolidate()
    assert report.merged == {b: a, c: a}
    assert mem.get(a).count == 3 and mem.get(b).merged_into == a and mem.get(c).text.endswith("!")
    assert {d, e} <= set(report.promoted)  # different numbers: never merged
    assert mem.forget(b) == sorted([a, b, c])  # forgetting a memory forgets its duplicates
    assert all(h.id != a for h in mem.recall("hiking in the mountains", k=5))


def test_forget_everywhere(mem: agentmem.Memory) -> None:
    i = mem.remember("Tomas climbs at the Boulder Barn", metadata={"speaker": "Ana"})
    mem.consolidate()
    assert mem.graph.facts("Ana")
    assert mem.forget(i) == [i]
    assert mem.graph.facts("Ana") == [] and "Boulder Barn" not in mem.graph.g
    assert i not in mem.vector and mem.recall("Boulder Barn", k=5) == []
    with pytest.raises(errors.NotFoundError):
        mem.forget(i)


def test_stm_overflow_consolidates(tmp_path: Path) -> None:
    with agentmem.Memory(tmp_path / "m", embedder="hash", stm_items=8) as mem:
        ids = [mem.remember(f"item number {n}") for n in range(20)]
        assert len(mem.stm) < 8
        assert mem.stats()["ltm"] + len(mem.stm) == 20
        assert mem.recall("item number 3", k=1)[0].id == ids[3]


def test_stm_survives_reopen(tmp_path: Path) -> None:
    with agentmem.Memory(tmp_path / "m", embedder="hash") as mem:
        i = mem.remember("not yet consolidated")
    with agentmem.Memory(tmp_path / "m") as mem:  # embedder comes from the memory itself
        assert mem.embedder_name == "hash"
        assert i in mem.stm and mem.recall("not yet consolidated", k=1)[0].id == i


def test_precomputed_embeddings(hmem: agentmem.Memory) -> None:
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(50, hmem.dim)).astype(np.float32)
    ids = hmem.remember_many([f"vector {n}" for n in range(50)], embeddings=vecs)
    hits = hmem.recall("anything", k=1, embedding=vecs[17])
    assert hits[0].id == ids[17]
    with pytest.raises(errors.DimensionError):
        hmem.remember("x", embedding=np.ones(hmem.dim + 1))
    with pytest.raises(errors.DimensionError):
        hmem.remember("x", embedding=np.full(hmem.dim, np.nan))


@pytest.mark.parametrize("bad, err", [
    ("", errors.InvalidInputError), ("   ", errors.InvalidInputError), (42, errors.InvalidInputError),
    (None, errors.InvalidInputError), (b"bytes", errors.InvalidInputError),
])
def test_bad_text(hmem: agentmem.Memory, bad: object, err: type) -> None:
    before = len(hmem)
    hmem.remember("kept")
    with pytest.raises(err, match="text"):
        hmem.remember(bad)  # type: ignore[arg-type]
    assert len(hmem) == before + 1


def test_bad_metadata_scope_k(hmem: agentmem.Memory) -> None:
    with pytest.raises(errors.InvalidInputError, match="JSON"):
        hmem.remember("x", metadata={"f": object()})
    with pytest.raises(errors.InvalidInputError, match="NaN"):
        hmem.remember("x", metadata={"f": float("nan")})
    with pytest.raises(errors.ScopeError, match="unknown scope key"):
        hmem.remember("x", scope={"tenant": "t1"})
    with pytest.raises(errors.ScopeError):
        hmem.remember("x", scope={"user": 7})  # type: ignore[dict-item]
    with pytest.raises(errors.ScopeError, match="valid unicode"):
        hmem.remember("x", scope={"user": "\ud800"})  # a lone surrogate, found by the fuzz test
    with pytest.raises(errors.InvalidInputError, match="k must"):
        hmem.recall("x", k=0)
    with pytest.raises(errors.InvalidInputError):
        hmem.remember_many(["a", ""])  # validated before anything is stored
    assert len(hmem) == 0
    hmem.remember("an item in short-term memory", metadata={"n": 1})
    for bad in ([1], "n", {"n": [1]}, {"bad key": 1}):  # rejected before the STM scan reads them
        with pytest.raises(errors.InvalidInputError, match="filter"):
            hmem.recall("item", filters=bad)  # type: ignore[arg-type]
        with pytest.raises(errors.InvalidInputError, match="filter"):
            hmem.search_vectors(np.ones(hmem.dim), filters=bad)  # type: ignore[arg-type]


def test_path_that_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("hello")
    with pytest.raises(errors.MemoryPathError, match="is a file"):
        agentmem.Memory(f)
    assert f.read_text() == "hello"


def test_embedder_mismatch(tmp_path: Path) -> None:
    agentmem.Memory(tmp_path / "m", embedder="hash").close()
    with pytest.raises(errors.EmbedderMismatchError, match="embedder='hash'"):
        agentmem.Memory(tmp_path / "m", embedder="minilm")


def test_unknown_option_and_closed(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidInputError, match="unknown option"):
        agentmem.Memory(tmp_path / "m", embeder="hash")
    mem = agentmem.Memory(tmp_path / "m", embedder="hash")
    mem.close()
    mem.close()
    with pytest.raises(errors.MemoryClosedError):
        mem.remember("x")


def test_second_writer_gets_clear_error(tmp_path: Path) -> None:
    with agentmem.Memory(tmp_path / "m", embedder="hash") as mem:
        mem.remember("first")
        with pytest.raises(errors.MemoryLockedError, match="read_only=True"):
            agentmem.Memory(tmp_path / "m", lock_timeout=0.1)
        with agentmem.Memory(tmp_path / "m", read_only=True) as reader:
            assert reader.recall("first", k=1)[0].text == "first"
            with pytest.raises(errors.ReadOnlyError):
                reader.remember("nope")
    agentmem.Memory(tmp_path / "m").close()  # the lock is free again


def test_forget_policy_is_logged(tmp_path: Path) -> None:
    with agentmem.Memory(tmp_path / "m", embedder="hash", ltm_max_items=5) as mem:
        mem.remember_many([f"fact {n} about topic {n}" for n in range(12)])
        report = mem.consolidate()
        assert mem.stats()["ltm"] == 5 and len(report.forgotten) == 7
        logged = mem.journal.conn.execute("SELECT detail FROM log WHERE action = 'forget'").fetchall()
        assert "ltm_max_items=5" in logged[0][0]
        mem.forget(mem.recall("fact 3 about topic 3", k=1)[0].id)
        by_hand, policy, consolidated = mem.history()  # newest first
        assert isinstance(by_hand, agentmem.LogEntry) and by_hand.detail["reason"] == "forget"
        assert by_hand.detail["count"] == 1 and by_hand.id > policy.id > consolidated.id
        assert policy.detail == {"count": 7, "ids": sorted(report.forgotten), "reason": "policy: ltm_max_items=5"}
        assert consolidated.action == "consolidate" and consolidated.detail == {"promoted": 12, "merged": 0, "facts": 0}
        assert mem.history(limit=1) == [by_hand] and mem.history(before=policy.id) == [consolidated]
        with pytest.raises(errors.InvalidInputError, match="limit"):
            mem.history(limit=0)


def test_forget_policy_limits_each_scope_not_the_whole_memory(tmp_path: Path) -> None:
    # issue 14.14: least_important was global, so one user's new items pushed out another's memories
    day = 86400.0
    now = time.time()
    with agentmem.Memory(tmp_path / "m", embedder="hash", ltm_max_items=3) as mem:
        bob = mem.remember_many(["Bob's sister lives in Lisbon", "Bob is allergic to penicillin"],
                                scope={"user": "bob"}, times=[now - 700 * day, now - 720 * day])
        mem.consolidate()
        # Alice's notes are spread over years: the newest are the most important (importance decays)
        notes = [f"Alice noted on visit {n} that the clinic moved its hours to {7 + n % 5} am" for n in range(10)]
        alice = mem.remember_many(notes, scope={"user": "alice"}, times=[now - (9 - n) * 150 * day for n in range(10)])
        report = mem.consolidate()
        assert sorted(report.forgotten) == sorted(alice[:7])
        assert [it.id for it in mem if it.scope == {"user": "bob"}] == bob  # the oldest, least important items
        assert sorted(it.id for it in mem if it.scope == {"user": "alice"}) == sorted(alice[-3:])
        assert [h.id for h in mem.recall("Where does Bob's sister live?", k=1, scope={"user": "bob"})] == bob[:1]
        another = mem.remember("Bob moved his appointment to Friday", scope={"user": "bob"})
        mem.consolidate()  # Bob's third item fits; a fourth would push out his least important
        assert sorted(it.id for it in mem if it.scope == {"user": "bob"}) == sorted([*bob, another])


def test_a_vector_cache_saved_without_item_times_gets_them_on_open(tmp_path) -> None:
    """Caches written before item times were kept load with unknown times; opening fills them in from
    the journal, so a recall naming a date still boosts the items of that date."""
    import numpy as np

    path = tmp_path / "m"
    with agentmem.Memory(path, embedder="hash") as m:
        ids = m.remember_many(["we planted tomatoes", "the bus was late"], times=["2023-05-07", "2024-01-02"])
        m.consolidate()
    cache = path / "vectors.npz"
    with np.load(cache) as z:
        arrays = {k: z[k] for k in z.files if k != "times"}
    with open(cache, "wb") as fh:
        np.savez(fh, **arrays)
    with agentmem.Memory(path, embedder="hash") as m:
        assert len(m.vector.unknown_times()) == 0
        assert m.vector.time_of(ids[0]) == agentmem.validate.when("2023-05-07")
        hits = m.recall("what happened in May 2023?", k=2)
        assert hits[0].id == ids[0]


def test_flush_waits_for_the_background_index_and_vectors_are_found_before(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    vecs = rng.normal(size=(6000, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    with agentmem.Memory(tmp_path / "m", ann_threshold=1000) as mem:
        ids = mem.remember_many([f"row {i}" for i in range(6000)], embeddings=vecs)
        mem.consolidate()
        # searchable at once (rows HNSW lacks are searched exactly), whatever the worker has reached
        assert mem.recall("row 5999", k=1, embedding=vecs[5999])[0].id == ids[5999]
        mem.flush()
        assert mem.vector.ann_rows == 6000
        assert mem.recall("row 17", k=1, embedding=vecs[17])[0].id == ids[17]


def test_stm_embeddings_are_a_snapshot(tmp_path: Path) -> None:
    from agentmem.stm import ShortTermMemory
    from agentmem.types import Item

    stm = ShortTermMemory(4, max_items=2, max_bytes=1 << 20)
    vecs = np.eye(4, dtype=np.float32)
    stm.add([Item(i + 1, f"t{i}", {}, {}, 0.0) for i in range(3)], vecs[:3])  # past capacity: grows
    before = stm.embeddings()
    stm.remove([1])  # compacts the buffer in place
    assert np.array_equal(before, vecs[:3])
    assert np.array_equal(stm.embeddings(), vecs[1:3])
    assert [i for i, _ in stm.search(vecs[2], 1)] == [3]


@pytest.mark.parametrize("bad", [5, 1.5, b"./memdir", ["./memdir"]])
def test_a_path_that_is_not_a_path_is_a_typed_error(tmp_path: Path, bad: object) -> None:
    with pytest.raises(errors.MemoryPathError, match=r"str or pathlib\.Path"):
        agentmem.Memory(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_path_is_refused_not_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           empty: str) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(errors.MemoryPathError, match="path is empty"):
        agentmem.Memory(empty)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", ["postgresql://user@localhost/db", "postgres://h/db", "HTTP://127.0.0.1:8765"])
def test_a_url_is_refused_not_made_into_a_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(errors.MemoryPathError, match=r"not supported.*pass a directory"):
        agentmem.Memory(url)
    assert list(tmp_path.iterdir()) == []  # no directory named "postgresql:" appeared


def test_a_lock_file_that_cannot_be_created_is_a_path_error(tmp_path: Path) -> None:
    (tmp_path / "m" / "LOCK").mkdir(parents=True)
    with pytest.raises(errors.MemoryPathError, match="lock file"):
        agentmem.Memory(tmp_path / "m", embedder="hash")


def test_a_read_only_directory_is_a_path_error(tmp_path: Path) -> None:
    import os

    if os.geteuid() == 0:
        pytest.skip("running as root: chmod 0o555 does not stop root from writing")
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    try:
        with pytest.raises(errors.MemoryPathError, match="lock file"):
            agentmem.Memory(tmp_path / "ro", embedder="hash")
    finally:
        (tmp_path / "ro").chmod(0o755)


def test_forget_many_checks_every_id_first(hmem: agentmem.Memory) -> None:
    a, b = hmem.remember_many(["first fact", "second fact"])
    with pytest.raises(errors.NotFoundError, match=r"no items 998, 999 .*nothing was forgotten"):
        hmem.forget_many([a, 999, 998])
    assert len(hmem) == 2
    assert hmem.forget_many([a, b]) == [a, b]
    assert len(hmem) == 0
    with pytest.raises(errors.InvalidInputError, match="list of ids"):
        hmem.forget_many(a)  # type: ignore[arg-type]


def test_items_of_a_scope_page_newest_first_and_hits_name_their_evidence(hmem: agentmem.Memory) -> None:
    ids = hmem.remember_many([f"ledger line {n} about harbour fees" for n in range(25)], scope={"user": "u1"})
    other = hmem.remember("harbour fees of another user", scope={"user": "u2"})
    hmem.consolidate()
    first = hmem.items({"user": "u1"}, limit=10)
    assert [i.id for i in first] == ids[::-1][:10]
    rest = hmem.items({"user": "u1"}, limit=100, before=first[-1].id)
    assert [i.id for i in first + rest] == ids[::-1]
    assert [i.id for i in hmem.items({"user": "u2"})] == [other]
    assert len(hmem.items()) == 26
    with pytest.raises(errors.InvalidInputError, match="limit must be"):
        hmem.items(limit=0)
    hit = hmem.recall("ledger line 7 about harbour fees", k=1, scope={"user": "u1"})[0]
    assert hit.id == ids[7] and {"vector", "lexical"} <= set(hit.evidence)
    assert list(hit.evidence) == sorted(hit.evidence)
