"""Crash torture: a writer process is SIGKILLed at random moments, over and over.

A "zygote" subprocess imports agentmem (and torch) once, then forks one writer per round, so a round
costs a fork instead of an interpreter start. Each writer runs a seeded random mix of remember,
remember_many, forget, consolidate, graph facts, weight saves, index saves and reopens, and logs
``I <json>`` before each call and ``A <json>`` only after the call returned. The test kills it with
SIGKILL after a random delay, reopens the memory and checks that:

- every acknowledged item is present (under its own id, or the id it was merged into), with its text;
- no acknowledged forget is undone, and an in-flight forget is all-or-nothing;
- an in-flight remember_many is all-or-nothing, and no other unacknowledged item appears;
- acknowledged facts and weight versions are present (sha256 intact), no temporary file is left;
- the vector cache, the FTS index, STM and the graph agree exactly with the journal.

Run it as a script (``python tests/test_crash.py zygote``) only through the test.
``AGENTMEM_CRASH_SEED`` replays a run; ``AGENTMEM_LONG=1`` kills 150 times instead of 30.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

KILLS = 150 if os.environ.get("AGENTMEM_LONG") else 30
SCOPES: list[dict[str, str]] = [{}, {"user": "u1"}, {"user": "u2", "session": "s1"}, {"agent": "a'; DROP"}]
NAMES = ["Alice", "Bob", "Carol", "Dmitri", "Eun", "Farah"]
WORDS = ["garden", "invoice", "river", "kernel", "violin", "harbour", "ledger", "orbit"]
TOKEN = "crashtoken"  # in every text: one FTS query lists every indexed row


# --- the writer (runs in a forked child) ----------------------------------------------------------


def _work(path: str, seed: int, ack_path: str) -> None:
    """Mutate the memory forever (until killed); log intent before and acknowledgement after each call."""
    import agentmem

    rng = random.Random(seed)
    fh = open(ack_path, "a", buffering=1)  # noqa: SIM115 (the process is killed, never closes it)

    def log(kind: str, **data: Any) -> None:
        fh.write(f"{kind} {json.dumps(data)}\n")
        fh.flush()

    def open_memory() -> Any:
        log("I", op="open")
        m = agentmem.Memory(path, embedder="hash", stm_items=rng.choice([8, 50, 100_000]), lock_timeout=30)
        log("A", op="open")
        return m

    mem = open_memory()
    alive = [int(i) for i in mem.journal.ids()]
    said: list[tuple[str, dict[str, str]]] = []
    n = 0

    def new_text() -> tuple[str, dict[str, str], dict[str, Any]]:
        nonlocal n
        n += 1
        if said and rng.random() < 0.1:  # an exact duplicate: consolidation merges it
            text, scope = rng.choice(said)
            return text, scope, {}
        a, b = rng.sample(NAMES, 2)
        text = f"{TOKEN} {a} saw {b} near the {rng.choice(WORDS)} tok{seed}x{n}"
        scope = rng.choice(SCOPES)
        said.append((text, scope))
        return text, scope, {"speaker": a, "n": n} if rng.random() < 0.5 else {"n": n}

    for _ in range(1_000_000):
        r = rng.random()
        if r < 0.33:
            text, scope, meta = new_text()
            log("I", op="remember", texts=[text], scope=scope)
            i = mem.remember(text, metadata=meta, scope=scope)
            log("A", op="remember", ids=[i])
            alive.append(i)
        elif r < 0.45:
            batch = [new_text() for _ in range(rng.randint(2, 40))]
            scope = batch[0][1]
            texts = [t for t, _, _ in batch]
            log("I", op="remember", texts=texts, scope=scope)
            ids = mem.remember_many(texts, [m for _, _, m in batch], scope=scope)
            log("A", op="remember", ids=ids)
            alive.extend(ids)
        elif r < 0.56 and alive:
            target = rng.choice(alive)
            log("I", op="forget", id=target)
            removed = mem.forget(target)
            log("A", op="forget", removed=removed)
            gone = set(removed)
            alive = [i for i in alive if i not in gone]
        elif r < 0.64:
            log("I", op="consolidate")
            mem.consolidate()
            log("A", op="consolidate")
        elif r < 0.76:
            item = rng.choice(alive) if alive and rng.random() < 0.7 else None
            subject = f"S{seed}x{n}"
            n += 1
            log("I", op="fact", subject=subject, item=item)
            mem.graph.add_fact(subject, "links", rng.choice(NAMES), item=item)
            log("A", op="fact", subject=subject, item=item)
        elif r < 0.83:
            name = f"w{rng.randint(0, 2)}"
            size = 2_000_000 if rng.random() < 0.15 else 1000
            state = {"a": np.random.default_rng(n).standard_normal(size).astype(np.float32)}
            log("I", op="weights", name=name)
            version = mem.weights.save(name, state, metadata={"n": n})
            sha = next(v.sha256 for v in mem.weights.versions(name) if v.version == version)
            log("A", op="weights", name=name, version=version, sha=sha)
        elif r < 0.88:
            log("I", op="save_index")
            mem.save_index()
            log("A", op="save_index")
        elif r < 0.92:
            log("I", op="close")
            mem.close()
            log("A", op="close")
            mem = open_memory()
        else:
            text, scope = rng.choice(said) if said else ("nothing", {})
            mem.recall(text.split()[-1], k=5, scope=scope)


def _zygote() -> None:
    """Read commands from stdin: ``{"op": "run", ...}`` forks a writer and prints its pid;
    ``{"op": "reap", "pid": p}`` waits for it and prints how it ended."""
    import networkx  # noqa: F401  (preloaded so that each fork starts warm)
    import torch  # noqa: F401

    import agentmem.memory  # noqa: F401
    from agentmem.plugins import load_plugins

    load_plugins()

    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "run":
            pid = os.fork()
            if pid == 0:
                _child(cmd)
            print(json.dumps({"pid": pid}), flush=True)
        elif cmd["op"] == "reap":
            _, status = os.waitpid(cmd["pid"], 0)
            sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
            print(json.dumps({"signal": sig, "code": code}), flush=True)


def _child(cmd: dict[str, Any]) -> None:
    import traceback

    code = 0
    try:
        null = os.open(os.devnull, os.O_RDWR)
        err = os.open(cmd["stderr"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(err, 2)
        _work(cmd["path"], cmd["seed"], cmd["ack"])
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        code = 3
    os._exit(code)


# --- the model of what was acknowledged -----------------------------------------------------------


@dataclass
class Model:
    alive: dict[int, str] = field(default_factory=dict)  # acknowledged id -> text
    scopes: dict[int, dict[str, str]] = field(default_factory=dict)
    forgotten: set[int] = field(default_factory=set)
    facts: dict[str, int | None] = field(default_factory=dict)  # subject -> item given
    weights: dict[tuple[str, int], str] = field(default_factory=dict)  # (name, version) -> sha256
    max_id: int = 0
    forget_log: int = 0  # last journal log row seen

    def apply(self, intent: dict[str, Any], ack: dict[str, Any]) -> None:
        op = ack["op"]
        if op == "remember":
            for i, text in zip(ack["ids"], intent["texts"], strict=True):
                assert i > self.max_id, f"id {i} reused or out of order (max so far {self.max_id})"
                self.alive[i] = text
                self.scopes[i] = intent["scope"]
                self.max_id = i
        elif op == "forget":
            for i in ack["removed"]:
                self.alive.pop(i, None)
                self.forgotten.add(i)
        elif op == "fact":
            self.facts[ack["subject"]] = ack["item"]
        elif op == "weights":
            self.weights[(ack["name"], ack["version"])] = ack["sha"]


def _read_log(path: Path) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], dict[str, Any] | None]:
    """(acknowledged (intent, ack) pairs, the intent in flight at the kill or None)."""
    pairs, intent = [], None
    for line in path.read_text().splitlines(keepends=True):
        if not line.endswith("\n"):
            break  # a torn last line: its call never started
        kind, data = line[0], json.loads(line[2:])
        if kind == "I":
            assert intent is None, f"two intents without acknowledgement: {intent} then {data}"
            intent = data
        else:
            assert intent is not None and intent["op"] == data["op"], f"ack {data} without intent"
            pairs.append((intent, data))
            intent = None
    return pairs, intent


# --- checks after each kill ----------------------------------------------------------------------


def _check(mem: Any, model: Model, in_flight: dict[str, Any] | None, where: str) -> None:
    j = mem.journal
    conn = j.conn
    op = in_flight["op"] if in_flight else None
    # forgets committed since the last check (each logs its ids once): acknowledged ones, and
    # possibly the one in flight, which may have committed before the kill
    new_logs = conn.execute("SELECT id, detail FROM log WHERE action = 'forget' AND id > ? ORDER BY id",
                            (model.forget_log,)).fetchall()
    logged: set[int] = set()
    for log_id, detail in new_logs:
        logged |= set(json.loads(detail)["ids"])
        model.forget_log = log_id
    unseen = logged - model.forgotten
    if unseen:
        assert op == "forget" and in_flight is not None and in_flight["id"] in unseen, \
            f"{where}: an unacknowledged forget of {sorted(unseen)[:10]} committed with {op} in flight"
        assert j.canonical(in_flight["id"]) is None, f"{where}: forget logged but item {in_flight['id']} is there"
    rows = {int(i) for i in j.ids()}
    merged = dict(conn.execute("SELECT merged_id, canonical_id FROM merges").fetchall())

    def canonical(i: int) -> int | None:
        return i if i in rows else merged.get(i)

    # 1. every acknowledged item is there, with its text
    texts = {i: it.text for i, it in j.get_items(sorted(rows)).items()}
    for i, text in list(model.alive.items()):
        if canonical(i) is None:
            assert i in unseen, f"{where}: acknowledged item {i} is lost ({text!r})"
            del model.alive[i]
            continue
        assert texts[canonical(i)] == text, f"{where}: item {i} changed text"  # type: ignore[index]
    model.forgotten |= unseen
    # 2. nothing forgotten is back
    back = [i for i in model.forgotten if canonical(i) is not None]
    assert not back, f"{where}: forgotten items resurrected: {back[:10]}"
    # 3. new ids: only from the call in flight, all or nothing
    new = sorted(i for i in rows | set(merged) if i > model.max_id)
    if new:
        assert op == "remember" and in_flight is not None, \
            f"{where}: items {new[:10]} appeared without a remember in flight"
        assert len(new) == len(in_flight["texts"]), \
            f"{where}: remember_many of {len(in_flight['texts'])} half-committed: {len(new)}"
        for i, text in zip(new, in_flight["texts"], strict=True):
            assert texts[canonical(i)] == text  # type: ignore[index]
            model.alive[i], model.scopes[i] = text, in_flight["scope"]
        model.max_id = new[-1]
    _check_caches(mem, model, rows, where)
    _check_facts_and_weights(mem, model, in_flight, where)


def _check_caches(mem: Any, model: Model, rows: set[int], where: str) -> None:
    j = mem.journal
    ltm = {int(i) for i in j.ids(tier="ltm")}
    stm = {int(i) for i in j.ids(tier="stm")}
    assert {int(i) for i in mem.vector.ids()} == ltm, f"{where}: vector cache != journal LTM"
    assert {e.item.id for e in mem.stm.entries()} == stm, f"{where}: STM != journal STM tier"
    indexed = {r[0] for r in j.conn.execute(f"SELECT rowid FROM items_fts WHERE items_fts MATCH '{TOKEN}'")}
    # the full-text index holds exactly the long-term items (short-term ones are scored in memory)
    assert indexed == rows & ltm, f"{where}: FTS rows differ from LTM items: {sorted(indexed ^ (rows & ltm))[:10]}"
    lexicon = mem.stm.lexicon
    assert {e.item.id for e in mem.stm.entries()} == set(lexicon.tf) | set(lexicon.pending), f"{where}: lexicon != STM"
    assert j.integrity() == [], f"{where}: {j.integrity()}"
    # every cached vector is the journal's: searching an item's own embedding finds it at cosine 1
    for scope in SCOPES:
        ids = [i for i in ltm if model.scopes.get(i, scope) == scope and i in model.alive]
        if not ids:
            continue
        ids_arr, vecs, _ = j.vectors(ids)
        results = mem.vector.search_batch(vecs, 8, mem.vector.mask(scope))
        for i, hits in zip(ids_arr.tolist(), results, strict=True):
            assert any(h == i and s > 0.999 for h, s in hits), f"{where}: cached vector of {i} is wrong"
    # the graph is exactly the facts table
    table = [tuple(r) for r in j.conn.execute("SELECT subject, relation, object, item_id FROM facts ORDER BY id")]
    assert [(f.subject, f.relation, f.object, f.item) for f in mem.graph.facts()] == table, f"{where}: graph"
    assert all(item is None or item in rows for *_, item in table), f"{where}: fact of a missing item"
    # public recall agrees: a sample of live items is found by its unique token, no forgotten one is
    rng = random.Random(len(rows))
    for i in rng.sample(sorted(model.alive), min(15, len(model.alive))):
        assert mem.get(i).text == model.alive[i]
        token = model.alive[i].split()[-1]
        hits = mem.recall(token, k=10, scope=model.scopes[i])
        assert j.canonical(i) in {h.id for h in hits}, f"{where}: recall lost item {i}"
        assert not {h.id for h in hits} & model.forgotten, f"{where}: recall served a forgotten item"


def _check_facts_and_weights(mem: Any, model: Model, in_flight: dict[str, Any] | None, where: str) -> None:
    j = mem.journal
    if in_flight is not None and in_flight["op"] == "fact":
        model.facts[in_flight["subject"]] = in_flight["item"]  # it may or may not have committed
        optional = in_flight["subject"]
    else:
        optional = None
    for subject, item in list(model.facts.items()):
        rows = j.conn.execute("SELECT item_id FROM facts WHERE subject = ?", (subject,)).fetchall()
        owner = None if item is None else j.canonical(item)
        if item is not None and owner is None:
            assert rows == [], f"{where}: fact {subject} outlived its forgotten item {item}"
        elif subject == optional and not rows:
            model.facts.pop(subject)
        else:
            assert rows == [(owner,)], f"{where}: fact {subject} -> {rows}, expected item {owner}"
    for (name, version), sha in model.weights.items():
        stored = {v.version: v.sha256 for v in mem.weights.versions(name)}
        assert stored.get(version) == sha, f"{where}: weights {name} v{version} lost or changed"
    assert mem.weights.verify() == [], f"{where}: {mem.weights.verify()}"
    leftovers = [p.name for p in mem.path.rglob("*.tmp")]
    assert not leftovers or mem.read_only, f"{where}: temporary files left after reopen: {leftovers}"


def _wait_for(path: Path, line: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and line in path.read_text():
            return
        time.sleep(0.005)
    raise AssertionError(f"the writer did not log {line!r} within {timeout} s")


# --- the test ------------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the torture test forks writer processes")
def test_sigkill_torture(tmp_path: Path) -> None:
    import agentmem

    base = int(os.environ.get("AGENTMEM_CRASH_SEED") or random.randrange(1 << 30))
    rng = random.Random(base)
    path = tmp_path / "mem"
    env = {**os.environ, "AGENTMEM_LOAD_PLUGINS": ""}  # built-ins only: this is about the core
    zygote = subprocess.Popen([sys.executable, __file__, "zygote"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1], env=env)
    assert zygote.stdin is not None and zygote.stdout is not None

    def ask(**cmd: Any) -> dict[str, Any]:
        zygote.stdin.write(json.dumps(cmd) + "\n")  # type: ignore[union-attr]
        zygote.stdin.flush()  # type: ignore[union-attr]
        return json.loads(zygote.stdout.readline())  # type: ignore[union-attr]

    model = Model()
    kills = 0
    interrupted: Counter[str] = Counter()
    try:
        for round_ in range(KILLS):
            seed = base + round_
            where = f"round {round_} (AGENTMEM_CRASH_SEED={base}, seed {seed})"
            ack, err = tmp_path / f"ack{round_}.log", tmp_path / "stderr.log"
            pid = ask(op="run", path=str(path), seed=seed, ack=str(ack), stderr=str(err))["pid"]
            if rng.random() < 0.2:  # sometimes while it opens (and catches up), mostly while it works
                time.sleep(rng.random() * 0.2)
            else:
                _wait_for(ack, f'A {json.dumps({"op": "open"})}', 20)
                time.sleep(rng.choice([0.005, 0.05, 0.2]) + rng.random() * 0.2)
            os.kill(pid, signal.SIGKILL)
            status = ask(op="reap", pid=pid)
            assert status["signal"] == signal.SIGKILL, f"{where}: writer died on its own:\n{err.read_text()}"
            kills += 1
            pairs, in_flight = _read_log(ack) if ack.exists() else ([], None)
            interrupted[in_flight["op"] if in_flight else "between calls"] += 1
            for intent, done in pairs:
                model.apply(intent, done)
            read_only = round_ % 2 == 1 and (path / "journal.sqlite3").exists()
            with agentmem.Memory(path, embedder="hash", read_only=read_only, lock_timeout=10) as mem:
                _check(mem, model, in_flight, where)
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=30)
    assert kills == KILLS
    print(f"{kills} kills (seed {base}); interrupted: {dict(interrupted)}; alive {len(model.alive)}, "
          f"forgotten {len(model.forgotten)}, facts {len(model.facts)}, weight versions {len(model.weights)}")
    assert len(model.alive) > 50 and model.forgotten and model.weights and model.facts, "the workload did too little"


BUILD = """
import sys, numpy as np, agentmem
path, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(seed)
mem = agentmem.Memory(path, stm_items=4096, dedup=False)  # the default embedder's 384 dims; vectors given
for start in range(0, n, 4096):
    m = min(4096, n - start)
    mem.remember_many([f"item {seed}-{start + j} on topic {(start + j) % 977}" for j in range(m)],
                      embeddings=rng.standard_normal((m, mem.dim)).astype(np.float32),
                      scope={"user": f"u{start % 7}"}, progress=False)
mem.consolidate()
if seed:  # the second writer: killed after its acknowledged work, before any save of the cache
    print("done", flush=True)
    import os, signal
    os.kill(os.getpid(), signal.SIGKILL)
mem.close()
"""

REOPEN = """
import json, sys, time, agentmem
t0 = time.perf_counter()
mem = agentmem.Memory(sys.argv[1], read_only=True)
opened = time.perf_counter() - t0
q = mem.journal.vectors([int(sys.argv[2])])[1][0]
t1 = time.perf_counter()
hit = mem.recall("item", k=1, embedding=q)[0].id
print(json.dumps({"open_s": opened, "recall_s": time.perf_counter() - t1, "items": len(mem), "hit": hit,
                  "notices": mem.notices}))
"""


@pytest.mark.skipif(not os.environ.get("AGENTMEM_LONG"), reason="builds 100k items (minutes): AGENTMEM_LONG=1")
def test_reopen_100k_after_a_kill_within_10s(tmp_path: Path) -> None:
    """100k items with the HNSW index, then a writer adds 5k more and is SIGKILLed before saving the
    cache: reopening (a fresh process) catches up within 10 s; so does reopening with no cache at all."""
    env = {**os.environ, "AGENTMEM_LOAD_PLUGINS": ""}
    path = str(tmp_path / "m100k")
    subprocess.run([sys.executable, "-c", BUILD, path, "100000", "0"], check=True, env=env, timeout=900)
    killed = subprocess.run([sys.executable, "-c", BUILD, path, "5000", "1"], env=env, timeout=600,
                            capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL and "done" in killed.stdout, killed.stderr

    def reopen() -> dict[str, Any]:
        out = subprocess.run([sys.executable, "-c", REOPEN, path, "100003"], env=env, timeout=600,
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out)

    after_kill = reopen()
    (tmp_path / "m100k" / "vectors.npz").unlink()
    no_cache = reopen()
    print(f"reopen of 105k items: after a kill {after_kill['open_s']:.2f} s, without a cache "
          f"{no_cache['open_s']:.2f} s; first recall {after_kill['recall_s'] * 1000:.1f} ms")
    for run in (after_kill, no_cache):
        assert run["items"] == 105_000 and run["hit"] == 100003
        assert run["open_s"] <= 10.0, run
    assert any("added 5000" in n for n in after_kill["notices"])


if __name__ == "__main__" and sys.argv[1:] == ["zygote"]:
    _zygote()
