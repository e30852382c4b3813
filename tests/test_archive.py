"""``agentmem export`` / ``agentmem import``: a memory with every kind of record (short- and long-term
items with metadata and times, merged duplicates, facts linked and unlinked, passages of a long text,
weight versions, API keys, the log, a forgotten id) goes to an archive and comes back as a new
memory with the same rows, ids, recall results, weights and keys; a damaged archive is refused."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import agentmem
from agentmem import errors, plugins
from agentmem.archive import TABLES, export_memory, import_memory
from agentmem.embedders import HashingEmbedder
from agentmem.pg.archive import redact
from agentmem.serve.keys import KeyStore

QUERIES = ["When did Caroline go to the support group?", "what did Melanie paint?", "adoption agencies",
           "the meter reading", "Lisbon"]


class ShortReader(HashingEmbedder):
    """The hashing embedder, reading only 120 characters whole: longer texts get passages."""

    name = "short-hash"
    passage_chars = 120


class Plugin:
    @agentmem.hookimpl
    def register_embedders(self, register: object) -> None:
        register("short-hash", ShortReader)  # type: ignore[operator]


@pytest.fixture(autouse=True)
def short_reader() -> object:
    plugins.register_plugin(Plugin(), name="archive-test-embedder")
    yield
    plugins.unregister_plugin("archive-test-embedder")


def build(path: Path) -> dict[str, object]:
    torch = pytest.importorskip("torch")
    with agentmem.Memory(path, embedder="short-hash") as mem:
        u1 = {"user": "u1"}
        ids = mem.remember_many(["Caroline went to the support group on 7 May 2023", "Melanie painted a lake",
                                 "Caroline is researching adoption agencies", "the meter reading was 4312"],
                                [{"topic": "support"}, {"topic": "art"}, None, {"n": 4312}], u1,
                                times=["2023-05-07", None, "2023-06-01", 1_700_000_000])
        dup = mem.remember("Caroline went to the support group on 7 May 2023", {"topic": "support"}, u1,
                           time="2023-05-07")
        long = mem.remember("Bob's sister lives in Lisbon. " + "She moved there for work and likes it. " * 12,
                            scope={"user": "u2", "session": "s1"})
        gone = mem.remember("a note to forget", scope=u1)
        mem.consolidate()
        mem.forget(gone)
        stm = mem.remember("still in short-term memory", {"k": [1, 2]}, u1)
        mem.graph.add_fact("Caroline", "attended", "support group", item=ids[0])
        mem.graph.add_fact("Bob", "sister lives in", "Lisbon", scope={"user": "u2"})
        mem.weights.save("state", {"w": torch.arange(6, dtype=torch.float32)}, {"step": 1})
        mem.weights.save("state", {"w": torch.ones(6)}, {"step": 2})
        raw, _ = KeyStore(mem.journal).create({"user": "u1"}, note="archive test")
        assert mem.get(dup).merged_into == ids[0] and len(mem.passages) > 0  # the records exist
        return {"ids": ids, "dup": dup, "long": long, "gone": gone, "stm": stm, "key": raw,
                "hits": {q: [(h.id, round(h.score, 6)) for h in mem.recall(q, k=5, scope={})] for q in QUERIES}}


def rows(path: Path, table: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path / "journal.sqlite3")
    try:
        return conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
    finally:
        conn.close()


def test_a_memory_goes_to_an_archive_and_comes_back_the_same(tmp_path: Path) -> None:
    built = build(tmp_path / "src")
    with agentmem.Memory(tmp_path / "src") as running:  # export works beside a writer holding the lock
        manifest = export_memory(tmp_path / "src", tmp_path / "archive")
        assert running.stats()["items"] == manifest["tables"]["items"]["rows"]
    assert manifest["version"] == 1 and manifest["source"]["embedder"] == "short-hash"
    assert {e["file"] for e in manifest["weights"]} == {"weights/state/v1.safetensors", "weights/state/v2.safetensors"}
    counts = import_memory(tmp_path / "archive", tmp_path / "dst")
    assert counts["items"] == 6 and counts["merges"] == 1 and counts["facts"] == 3 and counts["api_keys"] == 1
    for table in TABLES:
        assert rows(tmp_path / "dst", table) == rows(tmp_path / "src", table), table
    assert rows(tmp_path / "dst", "sqlite_sequence") == rows(tmp_path / "src", "sqlite_sequence")
    with agentmem.Memory(tmp_path / "dst") as mem:
        assert {q: [(h.id, round(h.score, 6)) for h in mem.recall(q, k=5, scope={})] for q in QUERIES} == built["hits"]
        assert mem.get(built["dup"]).merged_into == built["ids"][0]  # a merged item answers by its own id
        assert mem.get(built["stm"]).tier == "stm" and mem.get(built["stm"]).metadata == {"k": [1, 2]}
        with pytest.raises(errors.NotFoundError):
            mem.get(built["gone"])
        assert mem.recall("Lisbon", k=1, scope={"user": "u2"})[0].id == built["long"]
        assert [f.object for f in mem.graph.facts("Caroline")] == ["support group"]
        assert mem.weights.load("state", 1)["w"].tolist() == [0, 1, 2, 3, 4, 5]
        assert KeyStore(mem.journal).verify(built["key"]).scope == {"user": "u1"}
        new = mem.remember("written after the import", scope={"user": "u1"})
        assert new > built["stm"] and new != built["gone"]  # no id is ever given twice, a forgotten one included
        assert np.allclose(mem.embeddings([built["ids"][1]])[built["ids"][1]],
                           mem.embedder.embed("Melanie painted a lake"))


def test_a_damaged_archive_or_a_used_directory_is_refused(tmp_path: Path) -> None:
    with agentmem.Memory(tmp_path / "src", embedder="hash") as mem:
        mem.remember_many(["one", "two", "three"])
    export_memory(tmp_path / "src", tmp_path / "archive")
    with pytest.raises(errors.MemoryPathError, match="not empty"):
        export_memory(tmp_path / "src", tmp_path / "archive")
    with pytest.raises(errors.MemoryPathError, match="not empty"):
        import_memory(tmp_path / "archive", tmp_path / "src")
    items = tmp_path / "archive" / "items.jsonl"
    items.write_text(items.read_text().replace("two", "tw0"))
    with pytest.raises(errors.CorruptionError, match="sha256"):
        import_memory(tmp_path / "archive", tmp_path / "dst")
    assert not (tmp_path / "dst").exists()
    manifest = json.loads((tmp_path / "archive" / "manifest.json").read_text())
    manifest["version"] = 99
    (tmp_path / "archive" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(errors.SchemaError, match="format 99"):
        import_memory(tmp_path / "archive", tmp_path / "dst")
    with pytest.raises(errors.InvalidInputError, match="not an agentmem archive"):
        import_memory(tmp_path / "src", tmp_path / "dst")


def test_the_command_line_round_trip(tmp_path: Path) -> None:
    with agentmem.Memory(tmp_path / "src", embedder="hash") as mem:
        mem.remember_many(["Caroline went to the support group", "Melanie painted a lake"], scope={"user": "u1"})
    env = {"AGENTMEM_LOAD_PLUGINS": "", "PATH": "/usr/bin:/bin"}

    def cli(*args: str) -> dict[str, object]:
        done = subprocess.run([sys.executable, "-m", "agentmem", *args, "--json"], capture_output=True, text=True,
                              timeout=120, env=env)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    assert cli("export", str(tmp_path / "src"), str(tmp_path / "a"))["tables"]["items"]["rows"] == 2
    assert cli("import", str(tmp_path / "a"), str(tmp_path / "dst"))["items"] == 2
    with agentmem.Memory(tmp_path / "dst") as mem:
        assert mem.recall("support group", k=1)[0].text == "Caroline went to the support group"


def test_sqlite_to_postgresql_to_sqlite_keeps_every_row(tmp_path: Path, postgres_url: object) -> None:
    built = build(tmp_path / "src")
    url = postgres_url()  # type: ignore[operator]
    export_memory(tmp_path / "src", tmp_path / "a1")
    counts = import_memory(tmp_path / "a1", url)
    assert counts["items"] == 6 and counts["weights"] == 2
    with pytest.raises(errors.MemoryPathError, match="already holds a memory"):
        import_memory(tmp_path / "a1", url)
    manifest = export_memory(url, tmp_path / "a2")
    assert manifest["source"]["backend"] == "postgresql" and manifest["source"]["path"].startswith("postgresql://")
    assert redact("postgresql://me:s3cret@db.example/mem") == "postgresql://me:***@db.example/mem"
    import_memory(tmp_path / "a2", tmp_path / "dst")
    for table in TABLES:
        assert rows(tmp_path / "dst", table) == rows(tmp_path / "src", table), table
    assert rows(tmp_path / "dst", "sqlite_sequence") == rows(tmp_path / "src", "sqlite_sequence")
    with agentmem.Memory(tmp_path / "dst") as mem:
        assert {q: [(h.id, round(h.score, 6)) for h in mem.recall(q, k=5, scope={})] for q in QUERIES} == built["hits"]
        assert mem.weights.load("state", 2)["w"].tolist() == [1.0] * 6
        assert KeyStore(mem.journal).verify(built["key"]).scope == {"user": "u1"}
        assert mem.remember("after the trip", scope={"user": "u1"}) > built["stm"]
