"""The built-in consolidation policy: importance, duplicate detection and metadata-based facts.

Each hook is ``trylast`` so any plugin's answer takes precedence.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

from agentmem.hookspecs import hookimpl
from agentmem.types import Fact, Item

RECENCY_DAYS = 30.0
# Capitalised words or runs of them ("Caroline", "New York"); the first word of a sentence is
# dropped from a run because capitals there say nothing about names.
_NAME = re.compile(r"\b([A-Z][a-z]+(?:\s+[A-Z][a-z]+)*)\b")
_SENTENCE_START = re.compile(r"(^|[.!?:;\"]\s*)$")
_STOP = frozenset({"I", "The", "A", "An", "It", "This", "That", "We", "You", "He", "She", "They", "My",
                   "Hey", "Hi", "Yes", "No", "Oh", "Thanks", "Thank", "Wow", "So", "And", "But", "What",
                   "When", "Where", "Why", "How", "Who", "Did", "Do", "Is", "Are", "Was", "Can", "Just",
                   "January", "February", "March", "April", "May", "June", "July", "August", "September",
                   "October", "November", "December", "Monday", "Tuesday", "Wednesday", "Thursday",
                   "Friday", "Saturday", "Sunday", "Today", "Yesterday", "Tomorrow"})
_TOKENS = re.compile(r"\w+", re.UNICODE)
_NUMBER = re.compile(r"\d+")


@hookimpl(trylast=True)
def score_item(item: Item, novelty: float, now: float) -> float:
    age_days = max(0.0, now - (item.event_time or item.created_at)) / 86400.0
    recency = 0.5 ** (age_days / RECENCY_DAYS)
    repeats = min(1.0, (item.count - 1) / 4.0)
    return round(0.5 * novelty + 0.3 * recency + 0.2 * repeats, 6)


@hookimpl(trylast=True)
def should_merge(item: Item, existing: Item, similarity: float) -> bool:
    """Confirm a near-duplicate found by embedding similarity (``Config.merge_threshold``, applied by
    the caller). Embeddings alone would merge "room 517" into "room 571", so we also require the
    same numbers, the same speaker, and nearly the same words in the same order (>= 85% of tokens
    matched in sequence, so "is the kettle broken?" does not merge into "the kettle is broken")."""
    keys = set(item.metadata) & set(existing.metadata) & {"speaker", "role", "author"}
    if any(item.metadata[k] != existing.metadata[k] for k in keys):
        return False
    if _NUMBER.findall(item.text) != _NUMBER.findall(existing.text):
        return False
    a = [w.lower() for w in _TOKENS.findall(item.text)]
    b = [w.lower() for w in _TOKENS.findall(existing.text)]
    return SequenceMatcher(a=a, b=b, autojunk=False).ratio() >= 0.85


@hookimpl(trylast=True)
def extract_facts(item: Item) -> list[Fact]:
    """Facts from metadata: who said it (``speaker``) mentioned which capitalised names, and any
    ``facts`` given explicitly as [subject, relation, object] triples."""
    facts: list[Fact] = []
    explicit = item.metadata.get("facts")
    if isinstance(explicit, list):
        for triple in explicit:
            if isinstance(triple, list | tuple) and len(triple) == 3 and all(
                    isinstance(x, str) and x.strip() for x in triple):
                facts.append(Fact(triple[0], triple[1], triple[2], item.id))
    speaker = item.metadata.get("speaker")
    if isinstance(speaker, str) and speaker.strip():
        for name in dict.fromkeys(names(item.text)):
            if name != speaker:
                facts.append(Fact(speaker, "mentioned", name, item.id))
    return facts


def names(text: str) -> list[str]:
    """Capitalised names in ``text``, without sentence-initial words and common capitalised words."""
    found = []
    for m in _NAME.finditer(text):
        words = m.group(1).split()
        if _SENTENCE_START.search(text[: m.start()]):
            words = words[1:]
        while words and words[0] in _STOP:
            words = words[1:]
        if words:
            found.append(" ".join(words))
    return found
