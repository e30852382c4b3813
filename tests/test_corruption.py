"""Damaged, missing, stale and foreign files: each is detected on open with a message in
``Memory.notices`` (or a typed error), rebuilt from the journal where it can be, and never served."""

from __future__ import annotations

import json
import logging
import select
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import agentmem
from agentmem import errors

TEXTS = [f"note {n}: the {w} is kept in drawer {n % 7}" for n, w in
         enumerate(["stapler", "ledger", "violin", "compass", "lantern", "teapot"] * 10)]


def build(path: Path, texts: list[str] = TEXTS) -> dict[int, str]:
    """A consolidated memory with items in two scopes, a forgotten item, facts and two weight versions."""
    with agentmem.Memory(path, embedder="hash") as mem:
        ids = mem.remember_many(texts[::2], scope={"user": "a"}) + mem.remember_many(texts[1::2], scope={"user": "b"})
        mem.consolidate()
        mem.graph.add_fact("drawer", "holds", "stapler", item=ids[0])
        mem.weights.save("net", {"w": np.arange(1000, dtype=np.float32)}, metadata={"v": 1})
        mem.weights.save("net", {"w": np.arange(1000, dtype=np.float32) * 2}, metadata={"v": 2})
        mem.forget(ids[3])
        kept = {i: mem.get(i).text for i in ids if i != ids[3]}
    return kept


def assert_whole(mem: agentmem.Memory, kept: dict[int, str]) -> None:
    """Every item is stored, cached and found by recall; the vector cache equals the journal."""
    assert {it.id: it.text for it in mem} == kept
    assert sorted(mem.vector.ids().tolist()) == sorted(mem.journal.ids(tier="ltm").tolist())
    for i, text in list(kept.items())[::5]:
        scope = mem.get(i).scope
        hits = mem.recall(text, k=5, scope=scope)
        assert i in [h.id for h in hits] and all(h.scope == scope for h in hits)


def reopen(path: Path, **kw: object) -> agentmem.Memory:
    return agentmem.Memory(path, embedder="hash", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("damage", ["missing", "truncated", "garbage", "bitflip", "rows_bitflip", "other_dim"])
def test_unusable_vector_cache_is_rebuilt(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "m"
    kept = build(path)
    npz = path / "vectors.npz"
    data = npz.read_bytes()
    if damage == "missing":
        npz.unlink()
    elif damage == "truncated":
        npz.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        npz.write_bytes(b"\x00not a zip" * 100)
    elif damage == "bitflip":  # still a zip file, but a member fails its CRC
        import zipfile

        with zipfile.ZipFile(npz) as z:
            members = sorted(z.infolist(), key=lambda m: m.header_offset)
        blob = bytearray(data)
        blob[members[2].header_offset - 1] ^= 0xFF  # the last byte of the second member's data
        npz.write_bytes(bytes(blob))
    elif damage == "rows_bitflip":  # the float32 rows file (no zip CRC of its own: a checksum in the archive)
        (rows,) = path.glob("vectors.*.f32")
        blob = bytearray(rows.read_bytes())
        blob[len(blob) // 2] ^= 0x01
        rows.write_bytes(bytes(blob))
    else:
        from agentmem.ltm.vector import VectorIndex

        other = VectorIndex(8)
        other.add(np.array([1, 2]), np.eye(2, 8, dtype=np.float32), [{}, {}])
        other.save(npz)
    with reopen(path) as mem:
        assert any("rebuilding it from the journal" in n for n in mem.notices), mem.notices
        assert_whole(mem, kept)
    with reopen(path) as mem:  # the rebuilt cache was saved: the next open is clean
        assert mem.notices == []
        assert_whole(mem, kept)


def test_stale_vector_cache_is_caught_up(tmp_path: Path) -> None:
    """An old vectors.npz (e.g. left by a crash before the last save) is brought in step: items
    added since are added, items forgotten since are dropped, never served."""
    path = tmp_path / "m"
    kept = build(path)
    old = (path / "vectors.npz").read_bytes()
    with reopen(path) as mem:
        gone = mem.forget(next(iter(kept)))
        for i in gone:
            kept.pop(i, None)
        new = mem.remember_many(["a brand new note about the harbour", "another new note, on the kettle"],
                                scope={"user": "a"})
        mem.consolidate()
        kept.update({i: mem.get(i).text for i in new})
    (path / "vectors.npz").write_bytes(old)
    with reopen(path) as mem:
        assert any("behind the journal: added 2, dropped 1" in n for n in mem.notices), mem.notices
        assert_whole(mem, kept)
        assert not set(gone) & {h.id for h in mem.recall(TEXTS[0], k=50)}
    with reopen(path, read_only=True) as ro:  # a reader catches up in memory too
        assert_whole(ro, kept)


def test_foreign_vector_cache_is_not_served(tmp_path: Path) -> None:
    """A vector cache (vectors.npz and the files it names) copied from another memory has the same ids
    but other vectors: detected, rebuilt."""
    kept = build(tmp_path / "m")
    build(tmp_path / "other", [t.replace("note", "memo").upper() + " extra words" for t in TEXTS])
    for file in (tmp_path / "other").glob("vectors.*"):
        shutil.copy(file, tmp_path / "m" / file.name)
    with reopen(tmp_path / "m") as mem:
        assert any("differ from the journal" in n for n in mem.notices), mem.notices
        assert_whole(mem, kept)


def test_only_the_journal_is_needed(tmp_path: Path) -> None:
    """Deleting every derived file (vector cache, the lock, weights) loses no item or fact: the graph
    and the vectors are rebuilt from the journal; missing weight files are reported, not hidden."""
    path = tmp_path / "m"
    kept = build(path)
    for p in path.iterdir():
        if not p.name.startswith("journal.sqlite3"):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    with reopen(path) as mem:
        assert_whole(mem, kept)
        assert [(f.subject, f.object) for f in mem.graph.facts("drawer")] == [("drawer", "stapler")]
        assert any("weights net v2: file" in n and "missing" in n for n in mem.notices), mem.notices
        with pytest.raises(errors.CorruptionError, match="missing"):
            mem.weights.load("net")


def test_damaged_weights_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "m"
    build(path)
    v2 = path / "weights" / "net" / "v2.safetensors"
    blob = bytearray(v2.read_bytes())
    blob[-8] ^= 0x01  # same size: only the sha256 tells
    v2.write_bytes(bytes(blob))
    with reopen(path) as mem:
        with pytest.raises(errors.CorruptionError, match=r"sha256.*roll back"):
            mem.weights.load("net")
        assert np.array_equal(mem.weights.load("net", version=1, framework="np")["w"], np.arange(1000))
        assert [v.version for v in mem.weights.versions("net")] == [1, 2]  # nothing dropped silently
        mem.weights.rollback("net", 1)
        assert mem.weights.load("net", framework="np")["w"][1] == 1
        assert mem.weights.verify() == [mem.weights.verify()[0]] and "sha256 mismatch" in mem.weights.verify()[0]
    v2.write_bytes(bytes(blob[:100]))  # truncated: seen on open already
    with reopen(path) as mem:
        assert any("net v2: size mismatch" in n for n in mem.notices), mem.notices


def test_interrupted_writes_leave_nothing_behind(tmp_path: Path) -> None:
    """Temporary files and a weight version whose journal row never committed are swept by the next
    writer; a reader leaves them alone (the writer may be using them)."""
    path = tmp_path / "m"
    build(path)
    leftovers = [path / "vectors.npz.tmp", path / "weights" / "net" / ".v3.safetensors.tmp",
                 path / "weights" / "net" / "v3.safetensors"]
    for p in leftovers:
        p.write_bytes(b"half")
    with reopen(path, read_only=True) as ro:
        assert all(p.exists() for p in leftovers)
        assert ro.weights.load("net", framework="np")["w"][1] == 2
    with reopen(path) as mem:
        assert not any(p.exists() for p in leftovers)
        assert sum("interrupted write" in n for n in mem.notices) == 3, mem.notices
        assert mem.weights.save("net", {"w": np.zeros(3, np.float32)}) == 3


def test_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "m"
    kept = build(path)
    with sqlite3.connect(path / "journal.sqlite3") as conn:
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.execute("PRAGMA user_version = 99")
    for read_only in (False, True):
        with pytest.raises(errors.SchemaError, match=r"schema version 99.*upgrade agentmem"):
            reopen(path, read_only=read_only)
    with sqlite3.connect(path / "journal.sqlite3") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 99  # no migration was attempted
        conn.execute(f"PRAGMA user_version = {current}")
    with reopen(path) as mem:  # the lock was released by the failed opens
        assert_whole(mem, kept)


def test_a_journal_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "m"
    path.mkdir()
    (path / "journal.sqlite3").write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 40)
    with pytest.raises(errors.CorruptionError, match=r"not a readable SQLite database.*backup"):
        reopen(path)
    with pytest.raises(errors.CorruptionError):
        reopen(path, read_only=True)


def test_a_damaged_fulltext_index_is_reported_and_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "m"
    kept = build(path)
    with reopen(path) as mem:
        victim = next(iter(kept))
        with mem.journal.tx() as c:  # the index forgets a row the table still has
            c.execute("INSERT INTO items_fts (items_fts, rowid, text) VALUES ('delete', ?, ?)",
                      (victim, kept[victim]))
        assert any("full-text" in p for p in mem.journal.integrity())
        mem.journal.text.rebuild()
        assert mem.journal.integrity() == []
        assert victim in [i for i, _ in mem.journal.text.lexical(kept[victim], 5, {})]


# --- agentmem doctor ----------------------------------------------------------------------------


def doctor(*args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    import json

    from click.testing import CliRunner

    from agentmem.cli import _load_plugin_commands, cli

    _load_plugin_commands()
    result = CliRunner().invoke(cli, ["doctor", *args, "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}


def test_doctor_finds_and_repairs_what_the_journal_can_rebuild(tmp_path: Path) -> None:
    path = tmp_path / "m"
    kept = build(path)
    code, report = doctor(str(path))
    assert code == 0 and report["ok"], report
    assert {c["name"] for c in report["checks"]} == {"journal", "full-text index", "vector cache", "graph",
                                                     "weights", "leftovers", "write lock"}
    # damage everything that can be damaged
    (path / "vectors.npz").write_bytes(b"garbage")
    (path / "vectors.npz.tmp").write_bytes(b"half")
    (path / "weights" / "net" / "v3.safetensors").write_bytes(b"never committed")
    v2 = path / "weights" / "net" / "v2.safetensors"
    blob = bytearray(v2.read_bytes())
    blob[-4] ^= 0x10
    v2.write_bytes(bytes(blob))
    victim = next(iter(kept))
    with sqlite3.connect(path / "journal.sqlite3") as conn:
        conn.execute("INSERT INTO items_fts (items_fts, rowid, text) VALUES ('delete', ?, ?)", (victim, kept[victim]))
        conn.execute("INSERT INTO items_fts (rowid, text) VALUES (99999, 'a ghost of a deleted item')")
    code, report = doctor(str(path))
    failed = {c["name"]: c for c in report["checks"] if not c["ok"]}
    assert code == 1 and set(failed) == {"full-text index", "vector cache", "weights", "leftovers"}, report
    assert "sha256 mismatch" in failed["weights"]["detail"] and "rollback" in failed["weights"]["detail"]
    assert all(failed[n]["fixable"] for n in ("full-text index", "vector cache", "leftovers"))
    assert (path / "vectors.npz.tmp").exists()  # checking changed nothing

    code, report = doctor(str(path), "--repair")
    status = {c["name"]: c for c in report["checks"]}
    assert code == 1  # the damaged weights remain: they cannot be rebuilt
    assert [n for n, c in status.items() if not c["ok"]] == ["weights"]
    assert all(status[n]["repaired"] for n in ("full-text index", "vector cache", "leftovers"))
    assert any("interrupted write" in n for n in report["notices"])
    with reopen(path) as mem:
        assert mem.notices == []
        assert_whole(mem, kept)
        assert victim in [i for i, _ in mem.journal.text.lexical(kept[victim], 5, {})]
        assert mem.journal.text.lexical("ghost", 5, {}) == []
        mem.weights.rollback("net", 1)
    code, report = doctor(str(path))
    assert code == 1  # v2 is still damaged, and says so, though the current version is intact


def test_doctor_beside_a_writer_and_on_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "m"
    build(path)
    with reopen(path) as writer:
        writer.remember("written while the doctor looks")
        code, report = doctor(str(path))
        assert code == 0
        lock = next(c for c in report["checks"] if c["name"] == "write lock")
        assert "held by pid" in lock["detail"]
        from click.testing import CliRunner

        from agentmem.cli import cli

        result = CliRunner().invoke(cli, ["doctor", str(path), "--repair", "--lock-timeout", "0.2"])
        assert result.exit_code == 0  # nothing to repair: no lock needed
        (path / "vectors.npz.tmp").write_bytes(b"half")
        result = CliRunner().invoke(cli, ["doctor", str(path), "--repair", "--lock-timeout", "0.2"])
        assert result.exit_code == 1 and "open for writing by pid" in result.stderr
    with sqlite3.connect(path / "journal.sqlite3") as conn:
        conn.execute("PRAGMA user_version = 99")
    code, report = doctor(str(path), "--repair")
    assert code == 1 and "newer than this agentmem" in report["checks"][0]["detail"]
    code, report = doctor(str(tmp_path / "nowhere"))
    assert code == 1 and "holds no memory" in report["checks"][0]["detail"]


WRITER = """
import sys
import agentmem
mem = agentmem.Memory(sys.argv[1], embedder="hash")
mem.remember_many([f"note {n} on the harbour crane, shift {n % 7}" for n in range(300)], progress=False)
print("ready", flush=True)
sys.stdin.read()  # until the test closes stdin
mem.close()
"""


def start_writer(path: Path) -> subprocess.Popen[str]:
    """A writer in another process that remembered 300 items (long-term, its cache not yet saved)."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    assert ready and proc.stdout.readline().strip() == "ready", "the writer did not start"
    return proc


def stop(proc: subprocess.Popen[str], kill: bool = False) -> None:
    try:
        if kill:
            proc.kill()
        elif proc.stdin is not None:
            proc.stdin.close()
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def agentmem_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agentmem", *args], capture_output=True, text=True, timeout=120)


def test_doctor_and_readers_beside_a_live_writer_see_lag_not_damage(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # issue 14.8: doctor exited 1 ("vectors.npz is missing") and every reader warned, while the writer was fine
    path = tmp_path / "m"
    writer = start_writer(path)
    try:
        assert not (path / "vectors.npz").exists()  # the writer saves its cache on close
        text = agentmem_cli("doctor", "--path", str(path))
        assert text.returncode == 0 and text.stderr == "", text
        assert "FAIL" not in text.stdout and "info   vector cache" in text.stdout, text.stdout
        as_json = agentmem_cli("doctor", "--path", str(path), "--json")
        report = json.loads(as_json.stdout)
        assert as_json.returncode == 0 and report["ok"] and report["notices"] == [], report
        vectors = next(c for c in report["checks"] if c["name"] == "vector cache")
        assert vectors["ok"] and vectors["info"] and not vectors["fixable"], vectors
        assert "normal while pid" in vectors["detail"], vectors
        stats = agentmem_cli("stats", "--path", str(path), "--json")
        assert stats.returncode == 0 and stats.stderr == "" and json.loads(stats.stdout)["vectors"] == 300, stats
        with caplog.at_level(logging.INFO, logger="agentmem"), agentmem.Memory(path, read_only=True) as reader:
            assert reader.notices == [] and reader.lag and len(reader.recall("harbour crane", k=3)) == 3
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.records
        assert any("vector cache" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
    finally:
        stop(writer)
    code, report = doctor(str(path))  # closed: the writer saved the cache
    vectors = next(c for c in report["checks"] if c["name"] == "vector cache")
    assert code == 0 and not vectors["info"] and "300 vectors, in step" in vectors["detail"], report


def test_doctor_after_a_writer_died_reports_the_cache_behind_as_info_and_repair_saves_it(tmp_path: Path) -> None:
    # no live writer: the cache is behind because the last writer never closed; nothing is lost (the
    # journal has every vector) and any writer catches it up, so this is info, exit 0, and --repair saves it
    path = tmp_path / "m"
    stop(start_writer(path), kill=True)
    code, report = doctor(str(path))
    vectors = next(c for c in report["checks"] if c["name"] == "vector cache")
    assert code == 0 and report["ok"], report
    assert vectors["info"] and vectors["fixable"] and "did not close" in vectors["detail"], vectors
    code, report = doctor(str(path), "--repair")
    vectors = next(c for c in report["checks"] if c["name"] == "vector cache")
    assert code == 0 and vectors["repaired"] and not vectors["info"], report
    assert (path / "vectors.npz").exists()


def test_catch_up_after_a_crash_is_searched_exactly_then_indexed_on_close(tmp_path: Path) -> None:
    """With the approximate (HNSW) index in use, a stale cache is caught up by copying vectors (no HNSW
    insertions at open); the caught-up items are found at once, and the next save indexes them."""
    path = tmp_path / "m"
    opts = {"ann_threshold": 20, "stm_items": 10_000}
    with reopen(path, **opts) as mem:
        first = mem.remember_many([f"early note {n} on topic {n % 5}" for n in range(60)])
        mem.consolidate()
    old = {p.name: p.read_bytes() for p in path.glob("vectors.*")}  # the archive, its rows and HNSW files
    assert len(old) == 3
    with reopen(path, **opts) as mem:
        late = mem.remember_many([f"late note {n} about the harbour crane" for n in range(40)])
        mem.consolidate()
    for p in path.glob("vectors.*"):  # as if the writer had been killed before saving
        p.unlink()
    for name, data in old.items():
        (path / name).write_bytes(data)
    with reopen(path, **opts) as mem:
        assert any("added 40" in n for n in mem.notices)
        assert mem.vector.ann_rows == 60  # nothing inserted at open
        for i in (late[0], late[-1], first[3]):
            text = mem.get(i).text
            assert mem.recall(text, k=1, embedding=mem.journal.vectors([i])[1][0])[0].id == i
    with reopen(path, **opts) as mem:
        assert mem.notices == [] and mem.vector.ann_rows == 100
