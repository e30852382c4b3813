"""Small dataclasses that cross module and plugin boundaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from agentmem.scope import KEYS as SCOPE_KEYS  # noqa: F401  (re-exported: plugins read them here)
from agentmem.scope import key as scope_key  # noqa: F401

Source = Literal["stm", "ltm", "graph"]


@dataclass(frozen=True)
class Item:
    """One remembered text with its metadata, as stored in the journal."""

    id: int
    text: str
    metadata: dict[str, Any]
    scope: dict[str, str]
    created_at: float  # unix seconds when remembered
    event_time: float | None = None  # unix seconds the item is *about*, if known
    tier: Literal["stm", "ltm"] = "stm"
    count: int = 1  # how many rememberings of the same statement were merged into it
    importance: float = 0.0
    merged_into: int | None = None  # for an item merged away: the id of the item it lives under now


@dataclass(frozen=True)
class Hit:
    """One recall result. ``score`` is the fused score: it ranks the hits of one recall (higher is
    better) but means nothing across queries (each evidence list is standardised within the scope, so
    a lone item scores 0 and an unrelated query's best hit still scores above 0). To decide whether a
    hit is relevant at all, threshold the absolute fields: ``cosine``, the query embedding's cosine
    with the item's (the best of its passages' for a long text; None where no vector was compared),
    and ``matched``, the share of the query's content words (stemmed; Chinese, Japanese and Korean
    character pairs and emoji count as words) that the item's text contains, 1.0 when all are there.
    ``source`` says where it came from: "stm" (not yet consolidated), "ltm" (vector or lexical
    long-term evidence) or "graph" (reached only through knowledge-graph expansion). ``evidence``
    names the lists that ranked it among their best (``vector``, ``lexical``, ``context``, ``grams``,
    ``time``, ``exact``, ``graph``, or a ``recall_candidates`` plugin's name), in name order."""

    id: int
    text: str
    score: float
    metadata: dict[str, Any]
    source: Source
    scope: dict[str, str] = field(default_factory=dict)
    event_time: float | None = None
    cosine: float | None = None
    matched: float = 0.0
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class Fact:
    """A (subject, relation, object) triple, optionally linked to the item it came from."""

    subject: str
    relation: str
    object: str
    item: int | None = None


@dataclass(frozen=True)
class LogEntry:
    """One change to a memory's long-term stores as its journal logged it: ``action`` "consolidate"
    (``detail``: promoted, merged, facts: counts) or "forget" (``detail``: count, ids (the first
    100), reason: "forget" or the policy that chose them)."""

    id: int
    at: float  # unix seconds
    action: str
    detail: dict[str, Any]


@dataclass
class Event:
    """An input to the agent loop. ``kind`` is "text" by default; ``data`` may carry a tensor, an image
    array or a sequence for model plugins."""

    text: str | None = None
    data: Any = None
    kind: str = "text"
    metadata: dict[str, Any] = field(default_factory=dict)
    scope: dict[str, str] | None = None
    time: Any = None  # when it happened: unix seconds, datetime or ISO-8601 string
