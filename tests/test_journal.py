"""The SQLite journal: migrations, schema versions, lexical search and its budget."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import agentmem
from agentmem import errors
from agentmem.ltm.fulltext import fts_query, query_words
from agentmem.ltm.journal import Journal
from agentmem.ltm.migrations import MIGRATIONS
from agentmem.statement import content_hash


def test_migrations_and_newer_schema(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3")
    assert j.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert j.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    j.close()
    c = sqlite3.connect(tmp_path / "j.sqlite3")
    c.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    c.close()
    with pytest.raises(errors.SchemaError, match="upgrade agentmem-toolkit"):
        Journal(tmp_path / "j.sqlite3")


def test_fts_query_is_quoted() -> None:
    assert fts_query(query_words('x" OR 1=1 -- NEAR(a b)')) == '"x" OR "or" OR "1" OR "near" OR "a" OR "b"'
    assert fts_query(query_words("?!")) is None


def test_lexical_budget_keeps_rare_words(hmem: agentmem.Memory) -> None:
    ids = hmem.remember_many([f"common word filler {n}" for n in range(300)] + ["common zebra"])
    full = hmem.journal.text.lexical("common zebra", 5, {})
    budgeted = hmem.journal.text.lexical("common zebra", 5, {}, budget=10)  # "common" has 301 postings
    assert full[0][0] == budgeted[0][0] == ids[-1]
    assert [i for i, _ in budgeted] == [ids[-1]]
    # the budget counted "common" only to 11 postings; an exact count is taken when asked for
    assert hmem.journal.text.counted("common") == 11
    assert hmem.journal.text.doc_freq("common") == 301 and hmem.journal.text.doc_freq("zebra") == 1
    assert hmem.journal.text.doc_freq("common", cap=50) == 50 and hmem.journal.text.doc_freq("zebra", cap=50) == 1
    words = ["common", "zebra", "filler", "word", "7", "absent"]
    uncapped = sorted((hmem.journal.text.doc_freq(w), w) for w in words)
    for budget in (0, 1, 2, 300, 302, 1000):  # the same words as taking them rarest first by exact counts
        total, expected = 0, []
        for df, w in uncapped:
            if total + df > budget:
                break
            expected.append(w)
            total += df
        hmem.journal.text.clear_cache()
        assert hmem.journal.text.budget_words(words, budget) == expected


@pytest.mark.parametrize("sort_here", [4096, 3])
def test_lexical_ranks_best_first_however_many_match(hmem: agentmem.Memory, monkeypatch: pytest.MonkeyPatch,
                                                     sort_here: int) -> None:
    """Few matches are sorted in Python, many by SQLite (3: every query here has more): same ranking,
    ties in id order, as SQLite's own ORDER BY."""
    from agentmem.ltm import fulltext

    monkeypatch.setattr(fulltext, "SORT_HERE", sort_here)
    texts = [f"harbour {'boat ' * (n % 4)}tide {n % 7}" for n in range(60)] + ["harbour harbour boat"] * 3
    hmem.remember_many(texts)
    hmem.consolidate()
    for query, k in (("harbour boat", 10), ("tide boat", 5), ("harbour", 100), ("nothing", 3)):
        got = hmem.journal.text.lexical(query, k, {})
        match = fts_query(query_words(query))
        want = hmem.journal.conn.execute(
            "SELECT rowid, -bm25(items_fts) AS r FROM items_fts WHERE items_fts MATCH ? ORDER BY r DESC, rowid "
            "LIMIT ?", (match, k)).fetchall()
        assert got == want


def test_an_old_journal_is_rehashed_on_upgrade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Journals written before migration 3 hold 64-character hex hashes; after the upgrade every item
    has the short hash, so an exact duplicate remembered later still merges into the old item."""
    import hashlib

    from agentmem.ltm import migrations

    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:2])
    monkeypatch.setattr("agentmem.memory.content_hash", lambda t: hashlib.sha256(t.encode()).hexdigest())
    with agentmem.Memory(tmp_path / "m", embedder="hash") as m:
        old = m.remember("the spare key is under the blue pot")
        m.consolidate()
        assert len(m.journal.conn.execute("SELECT content_hash FROM items").fetchone()[0]) == 64
    monkeypatch.undo()
    with agentmem.Memory(tmp_path / "m", embedder="hash") as m:
        assert m.journal.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert {len(h) for (h,) in m.journal.conn.execute("SELECT content_hash FROM items")} == {8}
        again = m.remember("the spare key is under the blue pot")
        report = m.consolidate()
        assert report.merged == {again: old}
        assert m.journal.conn.execute("SELECT count(*) FROM items").fetchone()[0] == 1


def test_full_text_indexes_are_merged_after_enough_writes(tmp_path: Path) -> None:
    with agentmem.Memory(tmp_path / "m", embedder="hash", stm_items=50) as m:
        m.journal.text.writes = 0
        m.remember_many([f"note {n} about the harbour" for n in range(120)], batch_size=30)
        assert not m.journal.text.maybe_optimize(min_writes=1000)  # not enough yet
        segments = m.journal.conn.execute("SELECT count(*) FROM items_fts_data").fetchone()[0]
        assert m.journal.text.maybe_optimize(min_writes=100)
        assert m.journal.text.writes == 0
        assert m.journal.conn.execute("SELECT count(*) FROM items_fts_data").fetchone()[0] < segments
        assert {i for i, _ in m.journal.text.lexical("harbour", 500, {})} == set(range(1, 121))


def test_the_log_is_checkpointed_in_the_background_and_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    import numpy as np

    from agentmem.ltm import checkpoint

    monkeypatch.setattr(checkpoint, "WAL_CHECKPOINT_BYTES", 1 << 20)
    path = tmp_path / "j.sqlite3"
    j = Journal(path)
    assert j.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # the thread does it
    rows = [{"text": f"note number {i} about the garden", "metadata": "{}", "scope": {"user": "u"},
             "created_at": 1.0, "event_time": None, "content_hash": content_hash(f"n{i}"),
             "embedding": np.full(384, i, dtype=np.float32)} for i in range(800)]
    for row in rows:
        j.insert_items([row])
    deadline = time.time() + 10
    while j.checkpointer is not None and j.checkpointer.runs == 0 and time.time() < deadline:
        time.sleep(0.05)
    assert j.checkpointer is not None and j.checkpointer.runs >= 1
    assert path.stat().st_size > 1 << 20  # pages reached the database file before any close
    # the log restarts after a checkpoint; one that outgrows them is checkpointed by the writer
    # (a few commits late when the thread's checkpoint holds it off): ~50 MB were written in all
    assert (tmp_path / "j.sqlite3-wal").stat().st_size < 4 * checkpoint.WAL_FORCE_FACTOR << 20
    j.close()
    again = Journal(path, read_only=True)
    assert again.conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 800
    again.close()


def test_flush_empties_the_write_ahead_log(hmem: agentmem.Memory) -> None:
    wal = hmem.path / "journal.sqlite3-wal"
    hmem.remember_many([f"line {n} of the harbour log" for n in range(3000)])
    assert wal.stat().st_size > 0
    hmem.flush()
    assert wal.stat().st_size == 0  # copied into the database; the next write starts a new log
    hmem.remember("after the flush")
    assert [h.text for h in hmem.recall("after the flush", k=1)] == ["after the flush"]
