"""The built-in consolidation policy: importance, duplicate detection and metadata-based facts.

Each hook is ``trylast`` so any plugin's answer takes precedence.
"""

from __future__ import annotations

import itertools
import re

from agentmem.hookspecs import hookimpl
from agentmem.statement import same_statement
from agentmem.types import Fact, Item

RECENCY_DAYS = 30.0
# Rememberings of one statement this close in time merge (a retried or doubled write); further
# apart they are separate events, each found by its own time.
MERGE_WINDOW_S = 1.0
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
# a short quoted span without sentence punctuation inside: a title, if its words are capitalised
_QUOTED = re.compile(r"[\"\u201c]([A-Z][^\"\u201d.,!?;:]{1,58}[^\"\u201d.,!?;:\s])[\"\u201d]")
_TITLE_SMALL = frozenset({"of", "the", "a", "an", "and", "in", "on", "to", "with", "for", "at", "by", "or"})


@hookimpl(trylast=True)
def score_item(item: Item, novelty: float, now: float) -> float:
    age_days = max(0.0, now - (item.event_time or item.created_at)) / 86400.0
    recency = 0.5 ** (age_days / RECENCY_DAYS)
    repeats = min(1.0, (item.count - 1) / 4.0)
    return round(0.5 * novelty + 0.3 * recency + 0.2 * repeats, 6)


@hookimpl(trylast=True)
def should_merge(item: Item, existing: Item, similarity: float) -> bool:
    """Merge only the same statement said again (:func:`agentmem.statement.same_statement`: case,
    whitespace, repeated or final punctuation may differ) with the same metadata (so the same
    speaker) and the same time (event time, else when remembered, at most ``MERGE_WINDOW_S`` apart).
    Anything else stays its own item: a filter or time bound that found it before consolidation
    finds it after. ``similarity`` is not enough (MiniLM: "like" / "dislike" ~0.9, any two emoji 1.0)."""
    if not same_statement(item.text, existing.text) or item.metadata != existing.metadata:
        return False
    if (item.event_time is None) != (existing.event_time is None):
        return False
    t_item = item.created_at if item.event_time is None else item.event_time
    t_existing = existing.created_at if existing.event_time is None else existing.event_time
    return abs(t_item - t_existing) <= MERGE_WINDOW_S


@hookimpl(trylast=True)
def extract_facts(item: Item) -> list[Fact]:
    """Facts found offline, without a model: who said it (``speaker`` metadata) mentioned which names
    and titles (see :func:`names`); without a speaker, which names were mentioned together; and any
    ``facts`` given explicitly in metadata as [subject, relation, object] triples."""
    facts: list[Fact] = []
    explicit = item.metadata.get("facts")
    if isinstance(explicit, list):
        for triple in explicit:
            if isinstance(triple, list | tuple) and len(triple) == 3 and all(
                    isinstance(x, str) and x.strip() for x in triple):
                facts.append(Fact(triple[0], triple[1], triple[2], item.id))
    speaker = item.metadata.get("speaker")
    found = list(dict.fromkeys(names(item.text)))
    if isinstance(speaker, str) and speaker.strip():
        facts += [Fact(speaker, "mentioned", name, item.id) for name in found if name != speaker]
    else:
        facts += [Fact(a, "mentioned with", b, item.id) for a, b in itertools.pairwise(found)]
    return facts


def names(text: str) -> list[str]:
    """Names in ``text``: runs of capitalised words (without sentence-initial words and common
    capitalised words) and quoted titles ("The Alchemist" -> Alchemist), in order of appearance."""
    found = []
    for m in _NAME.finditer(text):
        words = m.group(1).split()
        if _SENTENCE_START.search(text[: m.start()]):
            words = words[1:]
        while words and words[0] in _STOP:
            words = words[1:]
        if words:
            found.append((m.start(), " ".join(words)))
    for m in _QUOTED.finditer(text):
        words = m.group(1).split()
        if len(words) <= 6 and all(w[0].isupper() or w in _TITLE_SMALL for w in words):
            while words and words[0] in _STOP:
                words = words[1:]
            if words:
                found.append((m.start(), " ".join(words)))
    return [name for _, name in sorted(found)]
