"""Issue 14.6: a hit carries what a caller can threshold on, and an exact-text query comes first."""

from __future__ import annotations

import agentmem

FACTS = [
    "I really like the new manager",
    "I really dislike the new manager",
    "The new manager really likes me",
    "My old manager was nice, I really liked her",
    "Please remind me to water the plants",
    "Please don't remind me to water the plants",
    "The design review moved to Thursday afternoon",
    "The design review moved to Tuesday afternoon",
]


def test_a_lone_item_reports_its_cosine_and_matched_words(mem: agentmem.Memory) -> None:
    mem.remember("The flight to Lisbon leaves at 7am on Friday")
    (hit,) = mem.recall("when does my flight to Lisbon leave?", k=3)
    assert hit.score == 0.0  # fused scores only rank: alone, an item is average
    assert hit.cosine is not None and hit.cosine > 0.5
    assert hit.matched == 1.0  # flight, lisbon, leave ("leaves" stems to the same term)
    (other,) = mem.recall("quantum chromodynamics lecture notes", k=3)
    assert other.cosine is not None and other.cosine < 0.2
    assert other.matched == 0.0


def test_an_unrelated_query_is_told_apart_by_cosine_and_matched_not_score(mem: agentmem.Memory) -> None:
    mem.remember_many(FACTS)
    for stage in ("stm", "ltm"):
        if stage == "ltm":
            mem.consolidate()
        unrelated = mem.recall("recipe for sourdough bread with rye flour", k=1)[0]
        related = mem.recall("what do I think of the new manager?", k=1)[0]
        assert unrelated.score > 0  # the best of a scope is above its average, relevant or not
        assert unrelated.matched == 0.0 and related.matched > 0.5
        assert unrelated.cosine is not None and related.cosine is not None
        assert unrelated.cosine < 0.25 < related.cosine


def test_an_exact_text_query_returns_its_item_first(mem: agentmem.Memory) -> None:
    ids = mem.remember_many(FACTS, scope={"user": "ann"})
    other = mem.remember("I really dislike the new manager", scope={"user": "bob"})
    for stage in ("stm", "ltm"):
        if stage == "ltm":
            mem.consolidate()
        for i, text in zip(ids, FACTS, strict=True):
            for query in (text, text.upper() + "!", f"  {text.lower()}. "):
                hits = mem.recall(query, k=3, scope={"user": "ann"})
                assert hits[0].id == i, (stage, query, [h.text for h in hits])
                assert hits[0].matched == 1.0
        assert other not in [h.id for h in mem.recall("I really dislike the new manager", k=8, scope={"user": "ann"})]
        assert mem.recall("I really dislike the new manager", k=1, scope={"user": "bob"})[0].id == other
        since = mem.recall(FACTS[0], k=3, scope={"user": "ann"}, since="2999-01-01")
        assert since == []  # the boost obeys the time bounds


def test_an_exact_text_query_beats_items_boosted_by_the_date_it_names(mem: agentmem.Memory) -> None:
    said = mem.remember("Dinner with Sam on 8 May 2023", time="2023-06-01")  # said weeks later
    mem.remember("Had dinner with Sam and his sister, lovely evening", time="2023-05-08")
    mem.remember("Sam booked the table", time="2023-05-08")
    assert mem.recall("Dinner with Sam on 8 May 2023", k=3)[0].id == said  # without exact_boost: third
    mem.consolidate()
    assert mem.recall("dinner with sam on 8 may 2023.", k=3)[0].id == said
