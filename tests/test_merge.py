"""Duplicate merging keeps what was said: only the same statement, said again with the same metadata
at the same time, merges; a merged item stays readable by its id; recall returns a group once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import agentmem
from agentmem.statement import normal_form, same_statement

# pairs that merged with the code at main (MiniLM cosine above the merge threshold, word ratio >= 85%)
DIFFERENT = [
    ("I am allergic to peanuts, shellfish, eggs, milk and soy, so please be careful when cooking for me",
     "I am not allergic to peanuts, shellfish, eggs, milk and soy, so please be careful when cooking for me"),
    ("The design review has been moved to Thursday afternoon in the big meeting room",
     "The design review has been moved to Tuesday afternoon in the big meeting room"),
    ("I really like the new manager", "I really dislike the new manager"),
    ("Please remind me", "Please don't remind me"),
    ("👍", "👎"), ("❤️", "💔"), ("ok 👍", "ok 👎"),
    ("../../../etc/passwd", "/etc/passwd"),
    ("Are you coming tomorrow?", "Are you coming tomorrow."),
    ("It is -5 degrees outside", "It is 5 degrees outside"),
]
SAME = [("I love hiking in the mountains", "i love hiking in the mountains!"),
        ("Went to the gym.", "went  to the gym"), ("wow!!!", "Wow!"), ("❤️", "❤")]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_same_statement_said_again(a: str, b: str) -> None:
    assert same_statement(a, b) and normal_form(a) == normal_form(b)


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_different_statements_never_merge(mem: agentmem.Memory, a: str, b: str) -> None:
    first, second = mem.remember(a), mem.remember(b)
    report = mem.consolidate()
    assert report.merged == {} and sorted(report.promoted) == [first, second]
    assert mem.get(first).text == a and mem.get(second).text == b
    assert {h.id for h in mem.recall(b, k=5)} == {first, second}


def test_synthetic_facts_with_one_word_changed_stay_apart(tmp_path: Path) -> None:
    """111 facts that differ in one weekday, verb or noun: every one keeps its own text (8 merged on main)."""
    days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    verbs = ["bought", "sold", "painted", "tuned", "moved", "broke", "fixed", "played"]
    nouns = ["piano", "guitar"]
    facts = [f"my boss {v} the old {n} on {d}" for v in verbs for n in nouns for d in days][:111]
    with agentmem.Memory(tmp_path / "m") as mem:
        ids = mem.remember_many(facts, scope={"user": "u1"})
        report = mem.consolidate()
        assert report.merged == {}
        assert [mem.get(i).text for i in ids] == facts


def test_merged_item_reads_back_as_remembered(mem: agentmem.Memory) -> None:
    a = mem.remember("I love hiking in the mountains", metadata={"speaker": "Ann"})
    b = mem.remember("i love hiking in the mountains!", metadata={"speaker": "Ann"})
    report = mem.consolidate()
    assert report.merged == {b: a}
    got = mem.get(b)
    assert (got.id, got.text, got.metadata, got.merged_into) == (b, "i love hiking in the mountains!",
                                                                 {"speaker": "Ann"}, a)
    assert mem.get(a).count == 2 and mem.get(a).merged_into is None
    hits = mem.recall("hiking in the mountains", k=5)
    assert [h.id for h in hits] == [a]  # one hit per group
    mem.close()  # reopened, it reads the same
    with agentmem.Memory(mem.path) as again:
        assert again.get(b).text == "i love hiking in the mountains!"


def test_same_text_from_another_speaker_stays_theirs(mem: agentmem.Memory) -> None:
    alice = mem.remember("I love it!", metadata={"speaker": "Alice"})
    bob = mem.remember("I love it!", metadata={"speaker": "Bob"})
    mem.consolidate()
    assert mem.get(bob).metadata == {"speaker": "Bob"} and mem.get(bob).merged_into is None
    assert [h.id for h in mem.recall("love", k=5, filters={"speaker": "Bob"})] == [bob]
    assert [h.id for h in mem.recall("love", k=5, filters={"speaker": "Alice"})] == [alice]


def test_same_text_on_other_dates_stays_four_events(mem: agentmem.Memory) -> None:
    dates = ["2023-05-01", "2023-05-08", "2023-05-15", "2023-05-22"]
    ids = [mem.remember("Went to the gym", time=d) for d in dates]
    before = [h.id for h in mem.recall("gym", k=5, since="2023-05-14")]
    mem.consolidate()
    after = [h.id for h in mem.recall("gym", k=5, since="2023-05-14")]
    assert sorted(before) == sorted(after) == ids[2:]
    assert len({mem.get(i).event_time for i in ids}) == 4


def test_given_vectors_equal_but_texts_differ(hmem: agentmem.Memory) -> None:
    """The fuzz failure on main: the same given vector merged '../../../etc/passwd' into '/etc/passwd'."""
    v = np.ones(hmem.dim, dtype=np.float32)
    a = hmem.remember("/etc/passwd", embedding=v)
    b = hmem.remember("../../../etc/passwd", embedding=v)
    hmem.consolidate()
    assert hmem.get(a).text == "/etc/passwd" and hmem.get(b).text == "../../../etc/passwd"


def test_a_plugin_may_merge_more_but_nothing_is_lost(tmp_path: Path) -> None:
    """A should_merge plugin that merges near-duplicates: the merged item's own text still reads back."""
    from agentmem.hookspecs import hookimpl
    from agentmem.plugins import register_plugin, unregister_plugin

    class Eager:
        @hookimpl
        def should_merge(self, item: object, existing: object, similarity: float) -> bool:
            return True

    register_plugin(Eager(), name="eager-merge")
    try:
        with agentmem.Memory(tmp_path / "m", embedder="hash") as mem:
            v = np.ones(mem.dim, dtype=np.float32)
            a = mem.remember("the kettle is broken", embedding=v, metadata={"room": 1})
            b = mem.remember("the kettle works again", embedding=v, metadata={"room": 2})
            assert mem.consolidate().merged == {b: a}
            got = mem.get(b)
            assert (got.text, got.metadata, got.merged_into) == ("the kettle works again", {"room": 2}, a)
    finally:
        unregister_plugin("eager-merge")


def test_a_journal_from_before_statement_hashes_is_rehashed(tmp_path: Path) -> None:
    """Schema 4 hashed exact texts; opening it hashes statements, so an old item is found again."""
    import hashlib
    import sqlite3

    with agentmem.Memory(tmp_path / "m", embedder="hash") as mem:
        old = mem.remember("I love it.", time="2023-05-07")
        mem.consolidate()
    conn = sqlite3.connect(tmp_path / "m" / "journal.sqlite3")
    conn.execute("UPDATE items SET content_hash = ?", (hashlib.sha256(b"I love it.").digest()[:8],))
    conn.executescript("DROP TABLE passages; DROP TABLE grams_fts; DROP TABLE api_keys; "
                       "PRAGMA user_version = 4;")  # as schema 4 was
    conn.commit()
    conn.close()
    with agentmem.Memory(tmp_path / "m", embedder="hash") as mem:
        again = mem.remember("i love it", time="2023-05-07")
        assert mem.consolidate().merged == {again: old}
