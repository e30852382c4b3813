"""Index terms for text the word tokenizer cannot split: scripts written without spaces, and emoji.

SQLite's ``unicode61`` tokenizer (the journal's full-text tokenizer) makes one token of a whole run
of Chinese or Japanese characters and drops emoji as separators, so "烤鸭" never matches
"我喜欢在北京吃烤鸭" and "👍" matches nothing. :func:`grams` gives such text the terms a lexical
search needs: every pair of adjacent characters of a run (a one-character run is its own term), the
usual way to search unsegmented scripts without a dictionary (Chinese, Japanese and Korean here),
and one term per emoji (skin-tone modifiers and variation selectors dropped, so 👍🏽 matches 👍).
Items with any such term are indexed in a second full-text table (``grams_fts``, migration 6);
items without are not, so English text pays nothing.
"""

from __future__ import annotations

import re

# Chinese, Japanese and Korean: Han (with radicals and compatibility forms), kana, Hangul. (Thai, Lao,
# Khmer and Myanmar are unspaced too, but their combining vowel signs split a character pair apart in
# the tokenizer: not covered.)
_RUN = re.compile(
    "[\u1100-\u11ff\u2e80-\u2fdf\u3040-\u30ff\u3105-\u312f"
    "\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f"
    "\U00020000-\U0003134f]+")
# Pictographs (emoji blocks, dingbats, miscellaneous symbols and arrows), regional indicators included.
_EMOJI = re.compile("[\u2300-\u23ff\u2600-\u27bf\u2b00-\u2bff\u3030\u303d\u3297\u3299\U0001f000-\U0001faff]")
_MODIFIERS = frozenset(range(0x1F3FB, 0x1F400))  # skin tones: the same emoji, not another one


def grams(text: str) -> list[str]:
    """The gram terms of ``text`` in order (empty for text of spaced scripts without emoji)."""
    if text.isascii():  # most text: no pattern to run
        return []
    out: list[str] = []
    for m in _RUN.finditer(text):
        run = m.group()
        out.extend([run] if len(run) == 1 else [run[i: i + 2] for i in range(len(run) - 1)])
    out.extend(f"u{ord(c):x}" for c in _EMOJI.findall(text) if ord(c) not in _MODIFIERS)
    return out


def has_grams(text: str) -> bool:
    """Whether ``text`` has any gram term."""
    return not text.isascii() and bool(_RUN.search(text) or _EMOJI.search(text))


def gram_text(text: str) -> str:
    """:func:`grams` as one space-separated string: what ``grams_fts`` indexes ('' when none)."""
    return " ".join(grams(text))
