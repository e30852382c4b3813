"""Recalls run side by side: a Memory's readers-writer lock, the journal's read connections and the
HNSW graph's shared searches. Each test would hang or break its barrier if recalls were serialised
again (as they were behind one RLock); every wait is bounded, so a deadlock fails instead of hanging."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

import agentmem
from agentmem import plugins
from agentmem.rwlock import SharedLock

WAIT = 20.0  # seconds any wait here may take before the test fails


class Gate:
    """A ``recall_candidates`` plugin that holds each recall inside the hook until told."""

    def __init__(self, parties: int | None = None) -> None:
        self.barrier = threading.Barrier(parties, timeout=WAIT) if parties else None
        self.entered = threading.Event()
        self.release = threading.Event()
        self.action: object = None  # called inside the hook when set (a write, in one test)

    @agentmem.hookimpl
    def recall_candidates(self, memory: agentmem.Memory, query: str, scope: dict[str, str], k: int) -> list[int]:
        self.entered.set()
        if self.barrier is not None:
            self.barrier.wait()  # every party inside recall at once, or BrokenBarrierError
        if callable(self.action):
            self.action(memory)
        if self.barrier is None:
            assert self.release.wait(WAIT)
        return []


@pytest.fixture
def gate(request: pytest.FixtureRequest) -> Gate:
    g = Gate(getattr(request, "param", None))
    plugins.register_plugin(g, name="gate")
    yield g
    g.release.set()
    plugins.unregister_plugin("gate")


def _memory(path: Path) -> agentmem.Memory:
    mem = agentmem.Memory(path, embedder="hash")
    mem.remember_many([f"note {n} about the harbour ferry timetable" for n in range(50)], scope={"user": "a"})
    mem.consolidate()
    return mem


def _thread(target: object) -> tuple[threading.Thread, list[BaseException]]:
    errs: list[BaseException] = []

    def run() -> None:
        try:
            target()  # type: ignore[operator]
        except BaseException as exc:  # re-raised by the test
            errs.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, errs


@pytest.mark.parametrize("gate", [3], indirect=True)
def test_recalls_are_inside_the_memory_at_the_same_time(tmp_path: Path, gate: Gate) -> None:
    with _memory(tmp_path / "m") as mem:
        hits: list[list[agentmem.Hit]] = []
        threads = [_thread(lambda: hits.append(mem.recall("ferry timetable", k=3, scope={"user": "a"})))
                   for _ in range(3)]
        for t, _ in threads:
            t.join(WAIT + 5)
        assert all(not errs for _, errs in threads), [errs for _, errs in threads]
        assert len(hits) == 3 and all(len(h) == 3 for h in hits)


def test_a_write_waits_for_a_recall_in_progress_and_the_next_recall_sees_it(tmp_path: Path, gate: Gate) -> None:
    with _memory(tmp_path / "m") as mem:
        reader, read_errs = _thread(lambda: mem.recall("ferry", k=3, scope={"user": "a"}))
        assert gate.entered.wait(WAIT)
        new: list[int] = []
        writer, write_errs = _thread(lambda: new.append(mem.remember("the ferry now leaves at noon",
                                                                       scope={"user": "a"})))
        time.sleep(0.3)
        assert not new, "a remember went ahead while a recall was reading"
        gate.release.set()
        reader.join(WAIT)
        writer.join(WAIT)
        assert not read_errs and not write_errs, (read_errs, write_errs)
        assert new and new[0] in [h.id for h in mem.recall("ferry leaves at noon", k=5, scope={"user": "a"})]


def test_a_recall_hook_that_writes_gets_an_error_naming_the_fix_not_a_deadlock(tmp_path: Path, gate: Gate) -> None:
    gate.release.set()
    gate.action = lambda memory: memory.remember("written from inside recall")
    with _memory(tmp_path / "m") as mem:
        with pytest.raises(RuntimeError, match="write after recall returns"):
            mem.recall("ferry", k=3)
        gate.action = None
        assert len(mem.recall("ferry", k=3)) == 3  # the lock was let go


def test_journal_reads_do_not_queue_behind_an_open_write_transaction(tmp_path: Path) -> None:
    with _memory(tmp_path / "m") as mem:
        first = mem.recall("ferry", k=1, scope={"user": "a"})[0].id
        inside, done = threading.Event(), threading.Event()

        def hold() -> None:
            with mem.journal.tx() as c:  # what a long consolidation's commit looks like to a reader
                c.execute("UPDATE items SET importance = 0.123 WHERE id = ?", (first,))
                inside.set()
                assert done.wait(WAIT)

        holder, errs = _thread(hold)
        assert inside.wait(WAIT)
        t0 = time.perf_counter()
        item = mem.get(first)
        hits = mem.recall("ferry timetable", k=3, scope={"user": "a"})
        took = time.perf_counter() - t0
        done.set()
        holder.join(WAIT)
        assert not errs, errs
        assert item.id == first and len(hits) == 3
        assert took < 5, f"reads waited {took:.1f} s for the writer's transaction"
        with mem.journal.reading() as conn:  # committed now, and a read connection sees it
            assert conn.execute("SELECT importance FROM items WHERE id = ?", (first,)).fetchone()[0] == 0.123


def test_hnsw_searches_share_the_graph(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((3000, 256)).astype(np.float32)
    with agentmem.Memory(tmp_path / "m", embedder="hash", ann_threshold=1000) as mem:
        mem.remember_many([f"row {n}" for n in range(len(vecs))], embeddings=vecs, progress=False)
        mem.consolidate()
        mem.flush()
        assert mem.vector.has_ann
        hnsw = mem.vector.hnsw
        with hnsw.searching():  # another search inside FAISS
            found: list[list[list[tuple[int, float]]]] = []
            t, errs = _thread(lambda: found.append(mem.search_vectors(vecs[7], k=1)))
            t.join(WAIT)
            assert not t.is_alive(), "a search waited for another search"
        assert not errs, errs
        assert found[0][0][0][1] == pytest.approx(1.0, abs=1e-5)


# --- the lock itself -----------------------------------------------------------------------------

def test_shared_lock_readers_together_writer_alone_and_preferred() -> None:
    lock = SharedLock("upgrade refused")
    order: list[str] = []
    with lock.shared():
        with lock.shared():  # re-entrant
            pass
        reader2_in = threading.Event()

        def reader2() -> None:
            with lock.shared():
                reader2_in.set()

        r2, r2_errs = _thread(reader2)
        assert reader2_in.wait(WAIT), "a second reader waited for the first"
        r2.join(WAIT)
        assert not r2_errs, r2_errs
        with pytest.raises(RuntimeError, match="upgrade refused"), lock.exclusive():
            pass
    with lock.exclusive():  # every hold was let go
        pass
    # a writer waits for a reader still holding the lock, and a reader arriving meanwhile waits behind it
    lock2 = SharedLock()
    held, let_go = threading.Event(), threading.Event()

    def long_reader() -> None:
        with lock2.shared():
            held.set()
            assert let_go.wait(WAIT)

    def writer() -> None:
        with lock2.exclusive():
            order.append("writer")
            with lock2.shared(), lock2.exclusive():  # the writer may read and write again
                pass

    def late_reader() -> None:
        with lock2.shared():
            order.append("reader")

    a, _ = _thread(long_reader)
    assert held.wait(WAIT)
    w, w_errs = _thread(writer)
    time.sleep(0.1)
    b, b_errs = _thread(late_reader)
    time.sleep(0.1)
    assert order == [], "the writer or the late reader went ahead of a reader still holding the lock"
    let_go.set()
    for t in (a, w, b):
        t.join(WAIT)
    assert not w_errs and not b_errs, (w_errs, b_errs)
    assert order == ["writer", "reader"]
