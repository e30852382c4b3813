"""When two texts are the same statement said again: the one rule duplicate merging is built on.

Merging may only fold a text into another when nothing it said is lost, so the rule is narrow on
purpose: texts are the same statement when they differ at most in letter case, Unicode form,
whitespace, emoji presentation selectors, repeated punctuation ("!!!" / "!") and the full stop or
exclamation mark that ends them. A changed word, a negation ("not", "don't"), a number, an emoji, a
question mark or a path separator makes another statement. Embedding similarity cannot decide
this: MiniLM gives "I like it" / "I dislike it" a cosine near 0.9 and maps every emoji to one
unknown token (cosine 1.0 between any two).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_SPACE = re.compile(r"\s+")
_SELECTORS = re.compile("[\ufe0e\ufe0f]")  # text / emoji presentation of the same character
_ENDING = re.compile(r"[\s.!\u3002\uff01\u2026]+$")  # a trailing full stop, '!', '。', '！' or '…'


_REPEATS = re.compile(r"([^\w\s])\1+")  # a run of one character that is neither a word character nor a space


def _one(m: re.Match[str]) -> str:
    ch = m.group(1)
    return ch if unicodedata.category(ch).startswith("P") else m.group()


def _collapse_repeats(text: str) -> str:
    """A run of one punctuation character counts once ("!!!" -> "!", "..." -> "."). A regex finds
    the runs: a loop over every character cost ~14 us per text, the most of an item's ingest."""
    return _REPEATS.sub(_one, text)


def normal_form(text: str) -> str:
    """The form two texts share exactly when they are the same statement (see the module doc)."""
    t = unicodedata.normalize("NFKC", text).casefold()
    t = _SELECTORS.sub("", t)
    t = _SPACE.sub(" ", t).strip()
    t = _collapse_repeats(t)
    stripped = _ENDING.sub("", t)
    return stripped or t  # a text of nothing but "!" or "..." stays itself


def same_statement(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` say the same thing in the sense of :func:`normal_form`."""
    return a == b or normal_form(a) == normal_form(b)


def content_hash(text: str) -> bytes:
    """Identity of a statement for duplicate lookup: the first 8 bytes of the SHA-256 of its
    :func:`normal_form` (stored and indexed per item, so kept short; a collision
    costs nothing, since merging compares the texts)."""
    return hashlib.sha256(normal_form(text).encode("utf-8", "surrogatepass")).digest()[:8]
