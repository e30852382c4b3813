"""Issue 14.4: lexical recall matches words inside Chinese, Japanese and Korean text, and emoji."""

from __future__ import annotations

import agentmem
from agentmem.grams import grams

TEXTS = ["我喜欢在北京吃烤鸭", "👍👍👍", "ok 👎", "ok 👍", "東京タワーに行きました", "저는 한국어를 공부해요",
         "I love eating roast duck in Beijing", "❤️ this song"]


def _top(mem: agentmem.Memory, query: str, k: int = 3) -> list[str]:
    return [h.text for h in mem.recall(query, k=k)]


def test_words_inside_cjk_text_and_emoji_are_found_before_and_after_consolidation(mem: agentmem.Memory) -> None:
    mem.remember_many(TEXTS)
    for stage in ("stm", "ltm"):
        if stage == "ltm":
            mem.consolidate()
        assert _top(mem, "烤鸭")[0] == "我喜欢在北京吃烤鸭", stage
        assert _top(mem, "北京烤鸭")[0] == "我喜欢在北京吃烤鸭", stage
        assert _top(mem, "東京")[0] == "東京タワーに行きました", stage
        assert _top(mem, "한국어")[0] == "저는 한국어를 공부해요", stage
        thumbs = _top(mem, "👍", k=4)
        assert thumbs.index("ok 👍") < thumbs.index("ok 👎"), (stage, thumbs)
        assert _top(mem, "👍🏽")[0] in ("👍👍👍", "ok 👍")  # a skin tone is the same emoji
        assert _top(mem, "❤")[0] == "❤️ this song"
        assert mem.recall("烤鸭", k=1)[0].matched == 1.0


def test_forgetting_a_cjk_item_unindexes_its_grams(mem: agentmem.Memory) -> None:
    ids = mem.remember_many(TEXTS)
    mem.consolidate()
    assert mem.journal.text.lexical(["烤鸭"], 10, {}, table="grams_fts") == [(ids[0], mem.journal.text.lexical(
        ["烤鸭"], 10, {}, table="grams_fts")[0][1])]
    mem.forget(ids[0])
    assert mem.journal.text.lexical(["烤鸭"], 10, {}, table="grams_fts") == []
    assert mem.journal.integrity() == []
    assert "我喜欢在北京吃烤鸭" not in _top(mem, "烤鸭", k=8)


def test_gram_terms() -> None:
    assert grams("plain English text, café") == []
    assert grams("吃烤鸭") == ["吃烤", "烤鸭"]
    assert grams("鸭") == ["鸭"]
    assert grams("👍🏽 and 👍") == ["u1f44d", "u1f44d"]
    assert grams("❤️") == ["u2764"]  # the variation selector is not a term
