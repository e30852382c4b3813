"""What one recall asks and what it reads: the frozen :class:`Query`, the :class:`Stores` recall
reads (not the ``Memory`` that owns them), the :class:`Context` one recall resolves once, the
stopwords left out of its lexical part, and the Python form of its scope, filter and time
restriction (the same meaning as the journal's SQL)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from agentmem import scope as scopes
from agentmem.ltm.fulltext import query_words
from agentmem.types import Item

if TYPE_CHECKING:
    from agentmem.config import Config
    from agentmem.ltm.graph import KnowledgeGraph
    from agentmem.ltm.journal import Journal
    from agentmem.ltm.passages import PassageIndex
    from agentmem.ltm.vector import VectorIndex
    from agentmem.stm import ShortTermMemory

# (query text, scope, k) -> [(plugin name, ranked ids)]: the ``recall_candidates`` hooks, called by
# the owning Memory (a hook receives the memory by contract; recall itself never holds it)
Candidates = Callable[[str, dict[str, str], int], list[tuple[str, list[int]]]]


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


@dataclass(frozen=True)
class Stores:
    """What recall reads: a memory's configuration and stores, without the memory."""

    config: Config
    journal: Journal
    vector: VectorIndex
    passages: PassageIndex
    stm: ShortTermMemory
    graph: KnowledgeGraph
    dim: int


@dataclass(frozen=True)
class Query:
    """What one recall asks, validated: the text, its unit embedding (dim,), how many hits, the
    scope, metadata filters and event-time bounds."""

    text: str
    vec: np.ndarray
    k: int
    scope: dict[str, str]
    filters: dict[str, Any] | None
    since: float | None
    until: float | None


def _no_candidates(text: str, scope: dict[str, str], k: int) -> list[tuple[str, list[int]]]:
    return []


@dataclass
class Context:
    """One recall: the stores it reads, the query, plugin candidates, and what :func:`search`
    resolves once for every kind of evidence (the restriction as ids and vector rows, the STM
    cosines, the candidates' cosines). The query's fields read through (``ctx.text``, ``ctx.scope``...)."""

    stores: Stores
    query: Query
    candidates: Candidates = _no_candidates
    allowed: np.ndarray | None = None  # ids passing filters/time bounds (None: no such restriction)
    allowed_set: set[int] = field(default_factory=set)
    width: int = 0  # context window width of this memory
    mask: np.ndarray | None = None  # vector-index rows in scope and allowed
    keep: Callable[[Item], bool] = field(default=lambda item: True)
    stm_scores: dict[int, float] = field(default_factory=dict)  # cosine of every STM item in scope
    top_id: int = 0  # the highest item id (document frequencies are cached relative to it)
    cosines: dict[int, float] = field(default_factory=dict)  # candidate -> its (best passage) cosine

    @property
    def text(self) -> str:
        return self.query.text

    @property
    def vec(self) -> np.ndarray:
        return self.query.vec

    @property
    def k(self) -> int:
        return self.query.k

    @property
    def scope(self) -> dict[str, str]:
        return self.query.scope

    @property
    def filters(self) -> dict[str, Any] | None:
        return self.query.filters

    @property
    def since(self) -> float | None:
        return self.query.since

    @property
    def until(self) -> float | None:
        return self.query.until


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
