"""Issue 14.3: every passage of a long text is found by meaning, and the text is one hit."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

import agentmem

SENTENCES = [
    "The committee reviewed the quarterly budget and approved two new hires for the support team.",
    "Rain is expected over the weekend, so the football match may be moved to the indoor hall.",
    "She spent the afternoon repainting the fence and fixing the hinge on the garden gate.",
    "The train to the coast was delayed by forty minutes because of a signal failure.",
    "Our book club finished the novel and argued about whether the ending was earned.",
    "The new firmware update improves battery life but breaks the bluetooth pairing screen.",
    "He practised the piano for an hour before walking the dog along the river path.",
    "The museum's winter exhibition features maps drawn by sailors in the eighteenth century.",
]
TAIL = "Finally, my grandmother's secret lasagna recipe uses nutmeg in the bechamel sauce."
SHORT = ["I went hiking on Saturday", "We watched a film about trains", "The cat sleeps on the sofa all day"]


def long_text(chars: int = 100_000, tail: str = TAIL) -> str:
    body, n = [], 0
    while n < chars:
        s = SENTENCES[len(body) % len(SENTENCES)]
        body.append(s)
        n += len(s) + 1
    return " ".join(body) + " " + tail


def _first(mem: agentmem.Memory, query: str, **kw: object) -> list[int]:
    return [h.id for h in mem.recall(query, k=3, **kw)]


def test_the_end_of_a_long_text_is_found_by_meaning_and_words_as_one_hit(tmp_path: Path) -> None:
    path = tmp_path / "m"
    with agentmem.Memory(path) as mem:
        doc = mem.remember(long_text())
        mem.remember_many(SHORT)
        assert mem.stats()["passages"] > 100
        for stage in ("stm", "ltm"):
            if stage == "ltm":
                mem.consolidate()
            for query in ("nutmeg lasagna", "which spice goes into grandma's lasagna?", "nutmeg"):
                hits = mem.recall(query, k=3)
                assert hits[0].id == doc, (stage, query, [h.text[:30] for h in hits])
                assert [h.id for h in hits].count(doc) == 1
                assert hits[0].cosine is not None and hits[0].cosine > hits[1].cosine
    with agentmem.Memory(path) as mem:  # passages come back from the journal
        assert _first(mem, "nutmeg lasagna")[0] == doc
    with agentmem.Memory(path, read_only=True) as reader:
        assert _first(reader, "which spice goes into grandma's lasagna?")[0] == doc


def test_a_long_text_in_another_scope_or_outside_the_filters_is_never_returned(mem: agentmem.Memory) -> None:
    bob = mem.remember(long_text(20_000), {"kind": "recipe"}, scope={"user": "bob"})
    mem.remember_many(SHORT, scope={"user": "alice"})
    for _ in range(2):
        assert bob not in _first(mem, "nutmeg lasagna", scope={"user": "alice"})
        assert bob not in _first(mem, "nutmeg lasagna", scope={"user": "bob"}, filters={"kind": "note"})
        assert _first(mem, "nutmeg lasagna", scope={"user": "bob"}, filters={"kind": "recipe"}) == [bob]
        mem.consolidate()


def test_forgetting_or_merging_a_long_text_drops_its_passages(mem: agentmem.Memory) -> None:
    text = long_text(10_000)
    first = mem.remember(text, time="2024-05-01T10:00:00")
    again = mem.remember(text, time="2024-05-01T10:00:00")  # the same statement at the same time: merged
    report = mem.consolidate()
    assert report.merged == {again: first}
    rows = mem.journal.conn.execute("SELECT DISTINCT item_id FROM passages").fetchall()
    assert rows == [(first,)]
    assert [h.id for h in mem.recall("nutmeg lasagna", k=5)] == [first]
    mem.forget(first)
    assert mem.journal.conn.execute("SELECT count(*) FROM passages").fetchone()[0] == 0
    assert mem.stats()["passages"] == 0
    assert mem.recall("nutmeg lasagna", k=5) == []


def test_a_long_text_with_a_given_embedding_still_gets_passages(mem: agentmem.Memory) -> None:
    vec = np.zeros(mem.dim, dtype=np.float32)
    vec[0] = 1.0
    doc = mem.remember(long_text(20_000), embedding=vec)
    mem.remember_many(SHORT)
    assert _first(mem, "which spice goes into grandma's lasagna?")[0] == doc


def test_short_texts_get_no_passages(mem: agentmem.Memory) -> None:
    mem.remember_many([*SHORT, "x" * 700])
    assert mem.stats()["passages"] == 0


def test_a_journal_from_before_passages_gets_them_and_its_grams_when_a_writer_opens_it(tmp_path: Path) -> None:
    path = tmp_path / "m"
    with agentmem.Memory(path) as mem:
        doc = mem.remember(long_text(20_000))
        cjk = mem.remember("我喜欢在北京吃烤鸭")
        mem.remember_many(["👍👍👍", *SHORT])
        mem.consolidate()
    conn = sqlite3.connect(path / "journal.sqlite3")  # as schema 5 left it
    conn.executescript("DROP TABLE passages; DROP TABLE grams_fts; DROP TABLE api_keys; "
                       "DELETE FROM meta WHERE key = 'passage_chars'; "
                       "PRAGMA user_version = 5;")
    conn.close()
    with agentmem.Memory(path) as mem:
        assert mem.stats()["passages"] > 10
        assert _first(mem, "which spice goes into grandma's lasagna?")[0] == doc
        assert _first(mem, "烤鸭")[0] == cjk
        assert mem.journal.integrity() == []
