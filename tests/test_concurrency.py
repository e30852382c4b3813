"""Concurrency model: in one process, any number of threads share a Memory (recalls side by side under
a readers-writer lock, writes alone: tests/test_parallel.py); across processes, one writer holds
``<memdir>/LOCK`` and others wait at most ``lock_timeout`` seconds for it, then get
MemoryLockedError; read_only openers need no lock and work beside the writer. Every wait here is
bounded, so a deadlock fails the test instead of hanging it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import agentmem
from agentmem import errors

ENV = {**os.environ, "AGENTMEM_LOAD_PLUGINS": ""}
SCOPES = [{"user": "u0"}, {"user": "u1"}, {"user": "u1", "session": "s"}, {"agent": "bot"}]


def run_threads(targets: list[Callable[[], None]], timeout: float = 90) -> list[BaseException]:
    """Run targets in threads; return their exceptions; fail if any is still running after ``timeout``."""
    errs: list[BaseException] = []

    def wrap(f: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                f()
            except BaseException as exc:  # collected and re-raised by the test
                errs.append(exc)
        return run

    threads = [threading.Thread(target=wrap(f), daemon=True) for f in targets]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), f"threads still running after {timeout} s: deadlock?"
    return errs


def test_threads_remember_recall_forget_consolidate_at_once(tmp_path: Path) -> None:
    mem = agentmem.Memory(tmp_path / "m", embedder="hash", stm_items=40)  # consolidates under load
    acked: dict[int, tuple[str, dict[str, str]]] = {}
    forgotten: set[int] = set()
    book = threading.Lock()
    done = threading.Event()
    wrong_scope: list[tuple[Any, ...]] = []

    def writer(w: int) -> Callable[[], None]:
        def run() -> None:
            for n in range(120):
                scope = SCOPES[(w + n) % len(SCOPES)]
                if n % 10 == 9:
                    texts = [f"writer{w} batch{n} line{j} about parcels" for j in range(5)]
                    ids = mem.remember_many(texts, scope=scope)
                else:
                    texts = [f"writer{w} note{n} about parcels and ferries"]
                    ids = [mem.remember(texts[0], scope=scope)]
                with book:
                    acked.update({i: (t, scope) for i, t in zip(ids, texts, strict=True)})
        return run

    def reader() -> None:
        n = 0
        while not done.is_set():
            scope = SCOPES[n % len(SCOPES)]
            for h in mem.recall(f"note{n % 120} parcels", k=20, scope=scope):
                if any(h.scope.get(k) != v for k, v in scope.items()):
                    wrong_scope.append((scope, h))
            n += 1

    def janitor() -> None:
        n = 0
        while not done.is_set():
            with book:
                victims = sorted(set(acked) - forgotten)[::7][:2]
            for v in victims:
                try:
                    removed = mem.forget(v)
                except errors.NotFoundError:
                    continue  # merged into an item this thread already forgot
                with book:
                    forgotten.update(removed)
            if victims:
                mem.graph.add_fact(f"janitor{n}", "touched", "parcel", item=victims[0] + 1 if
                                   victims[0] + 1 in acked and victims[0] + 1 not in forgotten else None)
            mem.consolidate()
            mem.weights.save("state", {"n": np.array([n], dtype=np.int64)})
            mem.graph.facts()
            mem.stats()
            n += 1

    writers = [writer(w) for w in range(4)]
    others = [reader, reader, janitor]

    def stop_when_written() -> None:
        errs = run_threads(writers)
        done.set()
        if errs:
            raise errs[0]

    errs = run_threads([stop_when_written, *others])
    assert not errs, errs
    assert not wrong_scope, wrong_scope[:3]
    assert len(acked) == 4 * (108 + 12 * 5)
    mem.close()
    with agentmem.Memory(tmp_path / "m", embedder="hash") as mem:
        for i, (text, scope) in acked.items():
            if i in forgotten:
                with pytest.raises(errors.NotFoundError):
                    mem.get(i)
            else:
                item = mem.get(i)
                assert item.text == text and item.scope == scope
        assert sorted(mem.vector.ids().tolist()) == sorted(mem.journal.ids(tier="ltm").tolist())
        assert mem.journal.integrity() == []
        assert len(mem.weights.versions("state")) >= 1


def test_graph_writes_while_recalling(tmp_path: Path) -> None:
    """Facts added from one thread while others walk the graph (facts, neighbours, graph-expanded
    recall): before graph reads took the journal lock, this raised 'dictionary changed size'."""
    with agentmem.Memory(tmp_path / "m", embedder="hash") as mem:
        ids = mem.remember_many([f"Entity{n} keeps the red ledger number {n}" for n in range(5)])
        mem.consolidate()
        stop = threading.Event()

        def add() -> None:
            try:
                for n in range(6000):
                    mem.graph.add_fact(f"Entity{n % 5}", "knows", f"Entity{(n * 3) % 5}", item=ids[n % 5])
            finally:
                stop.set()

        def walk() -> None:
            while not stop.is_set():
                mem.graph.facts("Entity3")
                mem.graph.neighbours("Entity3", depth=2)
                mem.recall("what does Entity3 know about Entity1?", k=5)

        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # switch threads often, so that walks and writes interleave
        try:
            errs = run_threads([add, walk, walk])
        finally:
            sys.setswitchinterval(interval)
        assert not errs, errs
        assert len(mem.graph.facts()) == 6000


# --- several processes ---------------------------------------------------------------------------

WRITER = """
import sys, time, agentmem
mem = agentmem.Memory(sys.argv[1], embedder="hash")
print("open", flush=True)
n = 0
while not sys.stdin.readline().startswith("stop"):
    ids = mem.remember_many([f"held note {n} {j}" for j in range(10)])
    n += 1
    print("ids " + " ".join(map(str, ids)), flush=True)
mem.close()
print("closed", flush=True)
"""

TURNS = """
import json, sys, agentmem
tag, out = sys.argv[2], []
for turn in range(4):
    with agentmem.Memory(sys.argv[1], embedder="hash", lock_timeout=60) as mem:
        out += mem.remember_many([f"{tag} turn {turn} line {j}" for j in range(25)])
print(json.dumps(out))
"""

LOCKED = """
import sys, time, agentmem
from agentmem.errors import MemoryLockedError
t0 = time.monotonic()
try:
    agentmem.Memory(sys.argv[1], embedder="hash", lock_timeout=0.3)
except MemoryLockedError as exc:
    print("locked", round(time.monotonic() - t0, 2), exc)
"""


def spawn(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", script, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)


def test_one_writer_others_wait_then_get_a_clear_error(tmp_path: Path) -> None:
    path = str(tmp_path / "m")
    writer = spawn(WRITER, path)
    assert writer.stdin is not None and writer.stdout is not None
    try:
        assert writer.stdout.readline().strip() == "open", writer.stderr.read() if writer.stderr else ""
        acked: list[int] = []
        for _ in range(3):
            writer.stdin.write("more\n")
            writer.stdin.flush()
            acked += [int(x) for x in writer.stdout.readline().split()[1:]]
        # another process: a bounded wait, then MemoryLockedError naming the holder and the ways out
        other = spawn(LOCKED, path)
        out, err = other.communicate(timeout=60)
        assert out.startswith("locked"), err
        assert f"pid {writer.pid}" in out and "read_only=True" in out and "lock_timeout" in out
        waited = float(out.split()[1])
        assert 0.3 <= waited < 5.0  # bounded: the timeout plus scheduling slack on a busy machine
        # this process: the same, and a reader beside the writer sees every acknowledged item
        t0 = time.monotonic()
        with pytest.raises(errors.MemoryLockedError):
            agentmem.Memory(path, embedder="hash", lock_timeout=0.2)
        assert time.monotonic() - t0 < 5.0
        with agentmem.Memory(path, read_only=True) as reader:
            assert {i for i in acked} <= {it.id for it in reader}
            assert reader.recall("held note 2", k=3)[0].text.startswith("held note 2")
            with pytest.raises(errors.ReadOnlyError):
                reader.remember("readers cannot write")
            writer.stdin.write("more\n")  # the writer keeps writing while the reader is open
            writer.stdin.flush()
            later = [int(x) for x in writer.stdout.readline().split()[1:]]
            assert reader.get(later[-1]).text == "held note 3 9"  # committed after the reader opened
        writer.stdin.write("stop\n")
        writer.stdin.flush()
        assert writer.stdout.readline().strip() == "closed"
    finally:
        writer.kill()
        writer.wait(timeout=30)
    with agentmem.Memory(path, embedder="hash", lock_timeout=5) as mem:  # released on close
        assert len(mem) == 40


def test_writer_processes_take_turns_without_losing_writes(tmp_path: Path) -> None:
    path = str(tmp_path / "m")
    procs = [spawn(TURNS, path, f"proc{p}") for p in range(3)]
    ids: list[int] = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        ids += json.loads(out)
    assert len(ids) == len(set(ids)) == 3 * 4 * 25
    with agentmem.Memory(path, embedder="hash") as mem:
        texts = {it.id: it.text for it in mem}
        assert sorted(texts) == sorted(ids)
        assert sum(t.startswith("proc1 turn 3") for t in texts.values()) == 25


def test_a_killed_writer_does_not_block_the_next(tmp_path: Path) -> None:
    path = str(tmp_path / "m")
    writer = spawn(WRITER, path)
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "open"
    writer.kill()
    writer.wait(timeout=30)
    with agentmem.Memory(path, embedder="hash", lock_timeout=2) as mem:  # the kernel dropped the flock
        mem.remember("after the crash")
        assert len(mem) == 1
