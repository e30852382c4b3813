"""Typed configuration of a memory. Unknown options are an error (dataclass ``__init__``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

from agentmem.errors import InvalidInputError


@dataclass(frozen=True)
class Config:
    # embedder: a registered name; None = the one this memory was built with, else "minilm"
    embedder: str | None = None
    # short-term memory bounds; reaching either consolidates STM into LTM
    stm_items: int = 256
    stm_bytes: int = 64 << 20
    # consolidation: merge an item into an existing one of the same scope at this cosine or above
    merge_threshold: float = 0.95
    dedup: bool = True
    # importance decays with this half-life (days) at ranking time
    half_life_days: float = 30.0
    # optional forget policy: keep at most this many LTM items (lowest importance forgotten, logged)
    ltm_max_items: int | None = None
    # vector cache: approximate (HNSW) search from this many vectors on
    ann_threshold: int = 20_000
    ef_search: int = 64
    # recall fusion (weighted reciprocal rank, see agentmem.retrieval)
    rrf_k: int = 60
    weight_vector: float = 1.0
    weight_lexical: float = 1.0
    weight_stm: float = 1.0
    weight_graph: float = 0.3
    candidates: int = 50
    # lexical search scores at most this many postings per query, rarest words first (see
    # Journal.lexical); bounds BM25's cost on large memories without changing small ones
    lexical_budget: int = 20_000
    # durability of each commit: "normal" survives a process crash, "full" also a power loss
    durability: Literal["normal", "full"] = "normal"
    # seconds to wait for another process's write lock before MemoryLockedError
    lock_timeout: float = 2.0

    def __post_init__(self) -> None:
        for name in ("stm_items", "stm_bytes", "ann_threshold", "ef_search", "rrf_k", "candidates",
                     "lexical_budget"):
            if int(getattr(self, name)) < 1:
                raise InvalidInputError(f"config {name} must be >= 1")
        if not 0.0 < self.merge_threshold <= 1.0:
            raise InvalidInputError("config merge_threshold must be in (0, 1]")
        if self.durability not in ("normal", "full"):
            raise InvalidInputError("config durability must be 'normal' or 'full'")
        if self.lock_timeout < 0:
            raise InvalidInputError("config lock_timeout must be >= 0 seconds")

    def updated(self, **overrides: Any) -> Config:
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise InvalidInputError(f"unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        return replace(self, **overrides)


def default_home() -> Path:
    """``AGENTMEM_HOME`` or ``~/.agentmem``."""
    return Path(os.environ.get("AGENTMEM_HOME") or Path.home() / ".agentmem")
