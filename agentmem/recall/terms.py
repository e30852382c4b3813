"""How many of a query's words a hit's text holds (``Hit.matched``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from agentmem.grams import grams, has_grams
from agentmem.lexicon import default_terms
from agentmem.recall.query import lexical_text


@dataclass(frozen=True)
class QueryTerms:
    """What :func:`matched` looks for: the index terms of each content word of a query (as the
    full-text tokenizer makes them; a word may give several) and its gram terms."""

    words: list[tuple[str, ...]]
    grams: list[str]

    def __len__(self) -> int:
        return len(self.words) + len(self.grams)


def query_terms(query: str) -> QueryTerms:
    # a word with gram terms (Chinese, Japanese, Korean) is looked for by its grams: the word
    # tokenizer makes one term of a whole run, which a text contains only as the same whole run
    words = list(dict.fromkeys(w for w in lexical_text(query).split() if w and not has_grams(w)))
    terms = [t for t in default_terms().of_words(words) if t]
    return QueryTerms(terms, list(dict.fromkeys(grams(query))))


_TEXT_WORD = re.compile(r"\w+")
TEXT_TERMS_CACHED = 8192  # texts whose term sets :func:`matched` keeps (a scope's hits recur across recalls)
_text_terms: dict[str, frozenset[str]] = {}


def text_terms(text: str) -> frozenset[str]:
    """Every full-text index term of ``text``'s words, cached by text (cleared when full): recalls in
    one scope return the same items again and again, and reading a text's terms was a fifth of a
    LoCoMo recall of 25 hits under cProfile."""
    have = _text_terms.get(text)
    if have is None:
        if len(_text_terms) >= TEXT_TERMS_CACHED:
            _text_terms.clear()
        have = _text_terms[text] = frozenset(default_terms().term_set(set(_TEXT_WORD.findall(text.lower()))))
    return have


def matched(terms: QueryTerms, text: str) -> float:
    """The share of the query's ``terms`` that ``text`` contains, in [0, 1]."""
    total = len(terms)
    if not total:
        return 0.0
    found = 0
    if terms.words:
        have = text_terms(text)
        found += sum(all(x in have for x in t) for t in terms.words)
    if terms.grams:
        text_grams = set(grams(text))
        found += sum(g in text_grams for g in terms.grams)
    return found / total
