"""The JSON shapes of the public types (``Hit``, ``Item``, ``Fact``, ``LogEntry``) and of the requests
that carry them: one definition for the REST API (:mod:`agentmem.serve.app`) and the MCP tools
(:mod:`agentmem.serve.mcp_tools`), so that both answer with the same fields as the Python API's
dataclasses. Pydantic only (no FastAPI): the stdio MCP server needs no web framework."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from agentmem.types import Fact, Hit, Item


class MemoryIn(BaseModel):
    text: str
    metadata: dict[str, Any] | None = None
    scope: dict[str, str] | None = None
    time: float | str | None = Field(None, description="when the event happened: unix seconds or ISO-8601")
    embedding: list[float] | None = Field(None, description="the text's embedding, to skip the embedder")


class MemoriesIn(BaseModel):
    """One memory (``text``...) or many (``items``)."""

    text: str | None = None
    metadata: dict[str, Any] | None = None
    scope: dict[str, str] | None = None
    time: float | str | None = None
    embedding: list[float] | None = None
    items: list[MemoryIn] | None = None


class Ids(BaseModel):
    ids: list[int]


class RecallIn(BaseModel):
    query: str
    k: int = 10
    scope: dict[str, str] | None = None
    filters: dict[str, Any] | None = None
    since: float | str | None = None
    until: float | str | None = None
    embedding: list[float] | None = None


class SearchIn(BaseModel):
    """``Memory.search_vectors``: the nearest items by cosine, no fusion."""

    vectors: list[list[float]] = Field(description="one or more query vectors of the memory's dimension")
    k: int = 10
    scope: dict[str, str] | None = None
    filters: dict[str, Any] | None = None
    since: float | str | None = None
    until: float | str | None = None


class Neighbours(BaseModel):
    results: list[list[tuple[int, float]]] = Field(description="per query vector, (id, cosine) best first")


class HitOut(BaseModel):
    id: int
    text: str
    score: float
    metadata: dict[str, Any]
    source: str
    scope: dict[str, str]
    event_time: float | None
    cosine: float | None
    matched: float | None
    evidence: list[str]


class Hits(BaseModel):
    hits: list[HitOut]


class ItemOut(BaseModel):
    id: int
    text: str
    metadata: dict[str, Any]
    scope: dict[str, str]
    created_at: float
    event_time: float | None
    tier: str
    count: int
    importance: float
    merged_into: int | None


class ItemsOut(BaseModel):
    items: list[ItemOut]


class FactIn(BaseModel):
    subject: str
    relation: str
    object: str
    item: int | None = None
    scope: dict[str, str] | None = None


class FactOut(BaseModel):
    subject: str
    relation: str
    object: str
    item: int | None


class Facts(BaseModel):
    facts: list[FactOut]


class Entities(BaseModel):
    entities: list[str]


class LogEntryOut(BaseModel):
    id: int
    at: float
    action: str
    detail: dict[str, Any]


class History(BaseModel):
    entries: list[LogEntryOut]


def hit_out(h: Hit) -> HitOut:
    return HitOut(id=h.id, text=h.text, score=h.score, metadata=h.metadata, source=h.source, scope=h.scope,
                  event_time=h.event_time, cosine=h.cosine, matched=h.matched, evidence=list(h.evidence))


def item_out(i: Item) -> ItemOut:
    return ItemOut(id=i.id, text=i.text, metadata=i.metadata, scope=i.scope, created_at=i.created_at,
                   event_time=i.event_time, tier=i.tier, count=i.count, importance=i.importance,
                   merged_into=i.merged_into)


def fact_out(f: Fact) -> FactOut:
    return FactOut(subject=f.subject, relation=f.relation, object=f.object, item=f.item)
