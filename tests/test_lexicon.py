"""Short-term items are indexed for full-text search only when consolidated; until then
agentmem.lexicon scores them in memory, on the index's scale."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import agentmem
from agentmem.lexicon import Lexicon, Stats, Terms
from agentmem.ltm.fulltext import query_words

U = {"user": "u1"}
WORDS = ["kayak", "lake", "budget", "meeting", "Thursday", "trams", "Lisbon", "running", "runs", "café",
         "garden", "roses", "moved", "city", "report", "filed", "section", "blue", "green", "quarterly"]


def _texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(3, 9))) + f" note{j}" for j in range(n)]


def _mem(tmp_path: Path, **options: object) -> agentmem.Memory:
    return agentmem.Memory(tmp_path / "m", embedder="hash", **options)


def test_terms_are_the_full_text_index_terms() -> None:
    terms = Terms()
    assert terms.of_text("Running CAFÉS, ran: runs!") == ["run", "cafe", "ran", "run"]
    assert terms.of_words(["a_b", "", "gardens"]) == [("a", "b"), (), ("garden",)]
    assert terms.of_words(["gardens"]) == [("garden",)]  # from the cache now
    assert terms.of_words(["0042", "٣"]) == [("0042",), ("٣",)]  # numbers, ASCII or not


def _fts_scores(mem: agentmem.Memory, words: list[str], windows: bool) -> dict[int, float]:
    return dict(mem.journal.text.lexical(words, 1000, U, windows=windows))


@pytest.mark.parametrize("windows", [False, True])
def test_short_term_scores_equal_what_the_index_gives_once_consolidated(tmp_path: Path, windows: bool) -> None:
    mem = _mem(tmp_path, stm_items=10_000, dedup=False)
    mem.remember_many(_texts(300, 1), scope=U)
    mem.consolidate()
    new = mem.remember_many(_texts(40, 2), scope=U)
    words = query_words("kayak budget running café roses")
    journal, lexicon = mem.journal, mem.stm.lexicon
    assert lexicon is not None and len(lexicon) == len(new) and all(i in lexicon for i in new)
    table = "windows_fts" if windows else "items_fts"

    def stats() -> Stats:
        rows, tokens = journal.text.fts_stats(table)
        return Stats(rows, tokens, lambda w: journal.text.doc_freq(w, 10**9, table))

    before = dict(lexicon.scores(words, stats(), lambda i: True, journal.window_width() if windows else None,
                                 lambda key: journal.ltm_tail(key, journal.window_width())))
    assert before and set(before) <= set(new)
    assert all(i not in _fts_scores(mem, words, windows) for i in new)  # not indexed yet
    mem.consolidate()
    journal.text.clear_cache()
    after = {i: s for i, s in _fts_scores(mem, words, windows).items() if i in new}
    assert set(after) == set(before)
    # the same formula on the same corpus; windows: the long-term tail's own windows grow by the new
    # items at consolidation, which moves the average window length a little
    tol = 0.02 if windows else 1e-9
    for i, s in before.items():
        assert after[i] == pytest.approx(s, rel=tol)
    mem.close()


def test_recall_finds_short_term_items_by_their_words_and_their_windows(tmp_path: Path) -> None:
    mem = _mem(tmp_path, weight_vector=0.0)
    mem.remember_many(_texts(50, 3), scope=U)
    mem.consolidate()
    q, a = mem.remember_many(["Bea, which city did you move to last spring?", "Oh, to Porto. I adore it."],
                             scope=U)
    mem.remember_many(_texts(5, 4), scope=U)
    assert a in mem.stm and q in mem.stm
    hits = mem.recall("Which city did Bea move to?", k=3, scope=U)
    assert [h.id for h in hits[:2]] == [q, a]  # the reply only by its window: it shares no word
    assert all(h.source == "stm" for h in hits[:2])
    assert not mem.recall("city Bea", k=3, scope={"user": "someone else"})  # scope still partitions
    mem.close()


def test_a_forgotten_short_term_item_leaves_the_lexicon(tmp_path: Path) -> None:
    mem = _mem(tmp_path, weight_vector=0.0, weight_context=0.0)
    ids = mem.remember_many(["the zebra42 code word", "something else entirely"], scope=U)
    assert mem.recall("zebra42", k=1, scope=U)[0].id == ids[0]
    mem.forget(ids[0])
    assert mem.stm.lexicon is not None and ids[0] not in mem.stm.lexicon
    assert all(h.id != ids[0] for h in mem.recall("zebra42", k=2, scope=U))
    assert mem.journal.integrity() == []
    mem.close()


def test_reopening_scores_short_term_items_again(tmp_path: Path) -> None:
    mem = _mem(tmp_path, weight_vector=0.0, weight_context=0.0)
    ids = mem.remember_many(["the zebra42 code word", "something else entirely"], scope=U)
    mem.close()
    mem = _mem(tmp_path, weight_vector=0.0, weight_context=0.0)
    assert mem.recall("zebra42", k=1, scope=U)[0].id == ids[0]
    reader = agentmem.Memory(tmp_path / "m", embedder="hash", read_only=True, weight_vector=0.0,
                             weight_context=0.0)
    assert reader.recall("zebra42", k=1, scope=U)[0].id == ids[0]
    mem.consolidate()  # the reader's STM snapshot and the index now both hold the item: one hit
    assert [h.id for h in reader.recall("zebra42", k=2, scope=U)].count(ids[0]) == 1
    reader.close()
    mem.close()


def test_window_frequencies_count_the_long_term_tail() -> None:
    lexicon = Lexicon(Terms())
    from agentmem.types import Item

    lexicon.add([Item(10, "apples here", {}, {"user": "u"}, 0.0), Item(11, "nothing", {}, {"user": "u"}, 0.0),
                 Item(12, "more apples", {}, {"user": "u"}, 0.0)])
    stats = Stats(0, 0, lambda w: 0)
    tail = {("u", None, None): ["old apples", "pears"]}
    got = dict(lexicon.scores(["apples"], stats, lambda i: True, 1, lambda key: tail[key]))
    assert set(got) == {10, 11, 12}  # 10: its own word; 11 and 12: their neighbours'
    plain = dict(lexicon.scores(["apples"], stats, lambda i: True))
    assert set(plain) == {10, 12}
    # a query of one scope reads no other scope's long-term tail
    lexicon.add([Item(13, "apples elsewhere", {}, {"user": "v"}, 0.0)])

    def only_u(key: tuple[str | None, ...]) -> list[str]:
        assert key == ("u", None, None), "read another scope's tail"
        return tail[key]

    got_u = dict(lexicon.scores(["apples"], stats, lambda i: i != 13, 1, only_u, lambda key: key[0] == "u"))
    assert set(got_u) == {10, 11, 12}
    lexicon.remove([13])
    lexicon.remove([10, 12])
    assert lexicon.scores(["apples"], stats, lambda i: True) == [] and len(lexicon) == 1


def test_items_removed_before_any_search_are_never_tokenized() -> None:
    from agentmem.types import Item

    lexicon = Lexicon(Terms())
    lexicon.add([Item(1, "apples", {}, {}, 0.0), Item(2, "pears", {}, {}, 0.0)])
    assert len(lexicon) == 2 and 1 in lexicon and not lexicon.tf  # queued, not tokenized
    lexicon.remove([1])
    assert [i for i, _ in lexicon.scores(["apples", "pears"], Stats(0, 0, lambda w: 0), lambda i: True)] == [2]
    assert set(lexicon.tf) == {2} and len(lexicon) == 1


def test_a_schema_3_journal_leaves_short_term_items_out_of_the_index_on_upgrade(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agentmem.ltm import migrations, windows

    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:3])
    mem = _mem(tmp_path, weight_vector=0.0)
    old = mem.remember_many(["the harbour ferry leaves at noon", "gulls over the harbour"], scope=U)
    mem.consolidate()
    new = mem.remember_many(["a harbour tour on sunday"], scope=U)
    with mem.journal.tx() as c:  # schema 3 indexed short-term items as they arrived
        c.execute("INSERT INTO items_fts (rowid, text) VALUES (?, ?)", (new[0], "a harbour tour on sunday"))
        windows.rebuild(c)
    mem.close()
    monkeypatch.undo()
    mem = _mem(tmp_path, weight_vector=0.0)
    assert mem.journal.conn.execute("PRAGMA user_version").fetchone()[0] == len(migrations.MIGRATIONS)
    assert {i for i, _ in mem.journal.text.lexical("harbour", 10, U)} == set(old)
    assert {i for i, _ in mem.journal.text.lexical("harbour", 10, U, windows=True)} == set(old)
    assert mem.journal.integrity() == []
    assert new[0] in {h.id for h in mem.recall("harbour tour", k=3, scope=U)}  # scored in memory
    mem.close()
