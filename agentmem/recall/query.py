"""What one recall asks: the resolved query, the stopwords left out of its lexical part, and the
Python form of its scope, filter and time restriction (the same meaning as the journal's SQL)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from agentmem import scope as scopes
from agentmem.ltm.fulltext import query_words
from agentmem.types import Item

if TYPE_CHECKING:
    from agentmem.memory import Memory


DIRECT = frozenset({"vector", "lexical", "context", "grams", "time", "exact"})  # evidence that found an item itself
LEXICAL_DEPTH = 1000  # BM25 matches read per list: all of them in a conversation-sized scope
STATS_SAMPLE = 2048  # vectors sampled to estimate the dense score distribution of a large scope
# Words that carry no topic; dropped from lexical queries (unless nothing else is left).
STOPWORDS = frozenset({
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at",
    "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could",
    "did", "do", "does", "doing", "done", "during", "each", "few", "for", "from", "further", "had", "has",
    "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if",
    "in", "into", "is", "it", "its", "itself", "just", "me", "might", "more", "most", "my", "myself", "no",
    "nor", "not", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out",
    "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs",
    "them", "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too",
    "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who",
    "whom", "whose", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves",
    "ever", "also"
})


@dataclass
class Query:
    """Everything one recall needs, resolved once."""

    memory: Memory
    text: str
    vec: np.ndarray  # (dim,) unit query embedding
    k: int
    scope: dict[str, str]
    filters: dict[str, Any] | None
    since: float | None
    until: float | None
    allowed: np.ndarray | None = None  # ids passing filters/time bounds (None: no such restriction)
    allowed_set: set[int] = field(default_factory=set)
    width: int = 0  # context window width of this memory
    mask: np.ndarray | None = None  # vector-index rows in scope and allowed
    keep: Callable[[Item], bool] = field(default=lambda item: True)
    stm_scores: dict[int, float] = field(default_factory=dict)  # cosine of every STM item in scope
    top_id: int = 0  # the highest item id (document frequencies are cached relative to it)
    cosines: dict[int, float] = field(default_factory=dict)  # candidate -> its (best passage) cosine


def lexical_text(query: str) -> str:
    """The query's words without stopwords (all of them if only stopwords are left)."""
    words = query_words(query)
    content = [w for w in words if w not in STOPWORDS]
    return " ".join(content or words)


def item_matcher(scope: Mapping[str, str], filters: Mapping[str, Any] | None, since: float | None,
                 until: float | None) -> Callable[[Item], bool]:
    """A predicate with the same meaning as the journal's SQL scope/filter/time clauses."""

    def norm(v: Any) -> Any:
        return int(v) if isinstance(v, bool) else v

    def keep(item: Item) -> bool:
        if not scopes.contains(scope, item.scope):
            return False
        for key, value in (filters or {}).items():
            if value is None:
                if item.metadata.get(key) is not None:
                    return False
            elif norm(item.metadata.get(key)) != norm(value):
                return False
        t = item.event_time if item.event_time is not None else item.created_at
        return not ((since is not None and t < since) or (until is not None and t > until))

    return keep
