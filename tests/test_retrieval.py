"""Recall's building blocks, observed through Memory.recall: fusion, context windows, time in queries,
graph expansion, diversity; and the pieces they stand on (timeexpr, windows, mmr).

The hashing embedder keeps these fast; where the dense list would only add noise a test turns it off.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

import agentmem
from agentmem import timeexpr
from agentmem.ltm import migrations, windows
from agentmem.recall import lexical_text, mmr

GREEK = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu",
         "nu", "xi"]
FILLER = [f"note {n}: the {w} report is filed under section {n % 7}" for n, w in enumerate(GREEK)]
U = {"user": "u1"}


def _mem(tmp_path: Path, name: str = "m", **options: object) -> agentmem.Memory:
    return agentmem.Memory(tmp_path / name, embedder="hash", **options)


@pytest.fixture
def chat(tmp_path: Path) -> Iterator[agentmem.Memory]:
    """A memory holding a conversation whose answer turn shares no word with the later question."""
    m = _mem(tmp_path)
    turns = [*FILLER[:6], "Bea, which city did you move to last spring?", "Lisbon! I love the trams there.",
             *FILLER[6:]]
    m.remember_many(turns, [{"speaker": "Bea" if "Lisbon" in t else "Al"} for t in turns], U)
    m.consolidate()
    yield m
    m.close()


def test_context_windows_find_the_reply_to_a_question(chat: agentmem.Memory) -> None:
    hits = chat.recall("Which city did Bea move to?", k=2, scope=U)
    assert "Lisbon! I love the trams there." in [h.text for h in hits]


def test_without_windows_the_reply_is_not_found_lexically(tmp_path: Path) -> None:
    m = _mem(tmp_path, weight_context=0.0, weight_vector=0.0)
    m.remember_many([*FILLER[:6], "Bea, which city did you move to last spring?",
                     "Lisbon! I love the trams there.", *FILLER[6:]], scope=U)
    texts = [h.text for h in m.recall("Which city did Bea move to?", k=3, scope=U)]
    assert texts[0] == "Bea, which city did you move to last spring?"
    assert "Lisbon! I love the trams there." not in texts
    m.close()


def test_fusion_weights_select_the_evidence(tmp_path: Path) -> None:
    m = _mem(tmp_path)
    m.remember_many(["the quarterly budget meeting moved to Thursday", *FILLER], scope=U)
    lexical_only = _mem(tmp_path, "lex", weight_vector=0.0, weight_context=0.0)
    lexical_only.remember_many(["the quarterly budget meeting moved to Thursday", *FILLER], scope=U)
    for mem in (m, lexical_only):
        top = mem.recall("when is the budget meeting", k=1, scope=U)[0]
        assert top.text.startswith("the quarterly budget")
        assert top.source == "stm"  # not consolidated yet: found among short-term items
    with pytest.raises(agentmem.errors.InvalidInputError):
        _mem(tmp_path, "bad", weight_vector=-1.0)
    m.close()
    lexical_only.close()


def test_stopwords_leave_the_topic_words() -> None:
    assert lexical_text("When did Caroline go to the support group?") == "caroline go support group"
    assert lexical_text("what did you do?") == "what did you do"  # only stopwords: keep them all


@pytest.mark.parametrize(("text", "start", "days"), [
    ("What did Tim watch on 8th December, 2023?", datetime(2023, 12, 8, tzinfo=UTC), 1),
    ("on December 8, 2023", datetime(2023, 12, 8, tzinfo=UTC), 1),
    ("anything from 2022-02-03?", datetime(2022, 2, 3, tzinfo=UTC), 1),
    ("plans for June 2023", datetime(2023, 6, 1, tzinfo=UTC), 30),
    ("what happened in December 2023", datetime(2023, 12, 1, tzinfo=UTC), 31),
    ("which races did she run in 2022", datetime(2022, 1, 1, tzinfo=UTC), 365),
])
def test_time_expressions_parse_to_spans(text: str, start: datetime, days: int) -> None:
    span = timeexpr.parse(text)
    assert span is not None
    assert span[0] == start.timestamp() and span[1] - span[0] == days * 86400


def test_relative_and_absent_time_expressions() -> None:
    now = datetime(2024, 3, 10, 15, 0, tzinfo=UTC).timestamp()
    assert timeexpr.parse("what did I eat yesterday", now) == (
        datetime(2024, 3, 9, tzinfo=UTC).timestamp(), datetime(2024, 3, 10, tzinfo=UTC).timestamp())
    three_days = timeexpr.parse("the call 3 days ago", now)
    assert three_days is not None and three_days[0] <= datetime(2024, 3, 7, tzinfo=UTC).timestamp() < three_days[1]
    assert timeexpr.parse("what did I eat yesterday") is None  # relative needs a "now"
    february = (datetime(2023, 2, 1, tzinfo=UTC).timestamp(), datetime(2023, 3, 1, tzinfo=UTC).timestamp())
    assert timeexpr.parse("31 February 2023 was odd") == february  # no such day: the month is named
    assert timeexpr.parse("I scored 2023 points") is None  # a bare number is not a year
    assert timeexpr.parse("no time here", now) is None


def test_a_date_in_the_query_ranks_that_day_first(tmp_path: Path) -> None:
    days = ["2023-05-01", "2023-05-08", "2023-05-15", "2023-05-22"]
    tops = {}
    for boost in (2.0, 0.0):
        m = _mem(tmp_path, f"t{boost}", time_boost=boost, weight_vector=0.0)
        # the same words every week; only the event time tells the items apart
        m.remember_many(["went to the pottery class"] * 4, [{"week": i} for i in range(4)], U, times=days)
        tops[boost] = m.recall("what did I do on 8 May 2023?", k=4, scope=U)
        m.close()
    first = tops[2.0][0]
    assert first.metadata["week"] == 1
    assert datetime.fromtimestamp(first.event_time or 0, UTC).date().isoformat() == "2023-05-08"
    unboosted = {h.metadata["week"]: h.score for h in tops[0.0]}
    assert first.score == pytest.approx(unboosted[1] + 2.0)  # the boost is added, nothing is filtered
    assert len(tops[2.0]) == 4


def test_graph_expansion_reaches_the_second_hop(tmp_path: Path) -> None:
    gained = {}
    for boost in (1.0, 0.0):
        m = _mem(tmp_path, f"g{boost}", graph_boost=boost, graph_seeds=1, weight_vector=0.0)
        texts = ["Dana recommended the novel Blue Harbor to everyone at the club",
                 *FILLER, "Finished Blue Harbor on the train, what an ending"]
        ids = m.remember_many(texts, [{"speaker": "Dana"}] + [{"speaker": "Eli"}] * (len(texts) - 1), U)
        m.consolidate()  # facts (speaker mentioned "Blue Harbor") are extracted here
        # k=4: the first hit and its two window neighbours, then whatever ranks next
        hits = m.recall("What did Dana recommend at the club?", k=4, scope=U)
        assert hits[0].id == ids[0]
        gained[boost] = {h.id: h for h in hits}.get(ids[-1])
        m.close()
    assert gained[1.0] is not None and gained[0.0] is None
    assert gained[1.0].text.startswith("Finished Blue Harbor")


def test_graph_expansion_stays_inside_the_scope(tmp_path: Path) -> None:
    m = _mem(tmp_path, graph_seeds=1, weight_vector=0.0)
    m.remember_many(["Dana recommended the novel Blue Harbor", *FILLER[:4]], [{"speaker": "Dana"}] * 5, U)
    m.remember_many(["Blue Harbor is on my list", "Blue Harbor again"], [{"speaker": "Zed"}] * 2, {"user": "u2"})
    m.consolidate()
    hits = m.recall("What did Dana recommend?", k=10, scope=U)
    assert hits and all(h.scope == U for h in hits)
    m.close()


def test_mmr_prefers_a_new_item_over_a_near_duplicate() -> None:
    vecs = np.array([[1.0, 0.0], [0.999, 0.045], [0.0, 1.0]], dtype=np.float32)
    scores = {10: 1.0, 11: 0.99, 12: 0.8}
    assert mmr([10, 11, 12], scores, vecs, diversity=0.0, k=2)[:2] == [10, 11]
    assert mmr([10, 11, 12], scores, vecs, diversity=0.5, k=2)[:2] == [10, 12]


def test_diversity_option_spreads_the_hits(tmp_path: Path) -> None:
    texts = ["the blue kayak trip on the lake", "the blue kayak trip on the lake!", "the blue kayak trip, lake",
             "kayak rental prices near the lake", *FILLER]
    tops = {}
    for diversity in (0.0, 0.6):
        m = _mem(tmp_path, f"d{diversity}", diversity=diversity, dedup=False)
        m.remember_many(texts, scope=U)
        tops[diversity] = [h.text for h in m.recall("blue kayak trip on the lake", k=2, scope=U)]
        m.close()
    near_duplicates = set(texts[:3])
    assert len(near_duplicates & set(tops[0.0])) == 2  # relevance alone: two copies of the same thing
    assert len(near_duplicates & set(tops[0.6])) == 1


def _vocab(mem: agentmem.Memory) -> list[tuple[str, int, int]]:
    c = mem.journal.conn
    c.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.wv USING fts5vocab(main, windows_fts, 'instance')")
    return sorted(c.execute("SELECT term, doc, offset FROM temp.wv").fetchall())


def test_windows_stay_equal_to_a_rebuild_through_inserts_and_forgets(tmp_path: Path) -> None:
    rng = random.Random(7)
    words = ["oak", "elm", "ash", "yew", "fir", "pine", "birch", "alder"]
    m = _mem(tmp_path)
    ids: list[int] = []
    for _ in range(25):
        batch = [" ".join(rng.choices(words, k=3)) + f" {rng.random():.6f}" for _ in range(rng.randint(1, 5))]
        ids += m.remember_many(batch, scope={"user": rng.choice("ab")})
        if rng.random() < 0.5:
            ids.remove(gone := rng.choice(ids))
            m.forget(gone)
        if rng.random() < 0.3:  # windows are indexed as items reach LTM, and forgetting unindexes them
            m.consolidate()
    m.consolidate()
    maintained = _vocab(m)
    with m.journal.tx() as c:
        windows.rebuild(c)
    assert maintained == _vocab(m) and maintained
    m.close()


def test_forgetting_removes_the_text_from_every_window(tmp_path: Path) -> None:
    m = _mem(tmp_path)
    ids = m.remember_many(["before one", "before two", "the code word is zebra42", "after one", "after two"],
                          scope=U)
    m.consolidate()
    assert {i for i, _ in m.journal.text.lexical("zebra42", 10, U, windows=True)} == set(ids)
    m.forget(ids[2])
    assert m.journal.text.lexical("zebra42", 10, U, windows=True) == []
    assert {i for i, _ in m.journal.text.lexical("before", 10, U, windows=True)} == set(ids) - {ids[2]}
    m.close()


def test_an_old_journal_gets_its_windows_on_upgrade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:1])
    m = _mem(tmp_path)
    m.remember_many(["Which city did you move to?", "Lisbon, last spring."], scope=U)
    m.consolidate()
    m.close()
    monkeypatch.undo()
    m = _mem(tmp_path)
    assert [i for i, _ in m.journal.text.lexical("city", 10, U, windows=True)] == [1, 2]
    assert m.recall("which city", k=2, scope=U)
    m.close()


def test_score_sample_covers_the_scope_or_spreads_over_it() -> None:
    from agentmem.ltm.vector import VectorIndex

    rng = np.random.default_rng(3)
    vecs = rng.standard_normal((500, 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index = VectorIndex(8)
    index.add(np.arange(1, 501), vecs, [{"user": "a" if i % 2 else "b"} for i in range(500)])
    q = vecs[0]
    assert np.allclose(np.sort(index.sample_scores(q, None, 1000)), np.sort(vecs @ q))  # small: all rows
    mask = index.mask({"user": "a"})
    assert np.allclose(np.sort(index.sample_scores(q, mask, 1000)), np.sort(vecs[1::2] @ q))
    sample = index.sample_scores(q, None, 50)
    assert np.allclose(sample, vecs[::10] @ q)  # large: an even spread, every 10th row here


def test_fusing_many_candidates_at_once_gives_the_same_floats_as_one_by_one() -> None:
    from agentmem.recall import Evidence, Fuser

    rng = np.random.default_rng(5)
    lists = [Evidence("vector", 1.0, {i: float(rng.normal()) for i in range(0, 300, 2)}, 0.1, 0.7, -0.2),
             Evidence("lexical", 0.6, {i: float(rng.exponential()) for i in range(0, 300, 3)}, 0.05, 0.4, 0.0),
             Evidence("time", 0.0, {1: 5.0}),  # weight 0: no term
             Evidence("context", 0.3, {}, 0.0, 1.0, 0.0)]
    ranked = [("graph", [5, 7, 5, 11]), ("other", [7, 400])]
    fuse = Fuser(lists, ranked, 60, 0.5)
    ids = list(range(-3, 420))
    many = fuse.many(ids)
    assert list(many) == ids and all(many[i] == fuse(i) for i in ids)  # exactly equal, not close
    assert fuse.many([]) == {}
