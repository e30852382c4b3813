"""Typed configuration of a memory. Unknown options are an error (dataclass ``__init__``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

from agentmem.errors import InvalidInputError, MemoryPathError


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
    # optional forget policy: keep at most this many LTM items per scope (each user/agent/session
    # combination items were remembered with has its own limit; lowest importance forgotten, logged)
    ltm_max_items: int | None = None
    # stores, by registered name (``agentmem plugins`` lists them; agentmem.ltm.protocols says what one
    # provides): the vector cache and the knowledge graph
    vector_store: str = "faiss"
    graph_store: str = "networkx"
    # vector cache: approximate (HNSW) search from this many vectors on
    ann_threshold: int = 20_000
    ef_search: int = 64
    # recall fusion (see agentmem.recall): each evidence list's scores are standardised against
    # the scope's whole score distribution (z-scores) and summed with these weights. Chosen on the
    # LoCoMo dev half (`agentmem bench locomo --ablation`): dense and windowed lexical evidence
    # count equally; the item's own words add a little, mostly to the first hit. 0 turns a list off.
    weight_vector: float = 0.45  # dense: cosine to the query embedding (long- and short-term)
    weight_context: float = 0.45  # lexical BM25 over context windows (agentmem.ltm.windows)
    weight_lexical: float = 0.1  # lexical BM25 over the item's own text
    weight_graph: float = 0.3  # per recall_candidates plugin list (rank-based: rrf_k decay)
    # BM25 over gram terms (agentmem.grams: character pairs of Chinese, Japanese, Thai..., and emoji),
    # used when the query has any: the weight of both word lists, which find nothing in such text
    weight_grams: float = 0.55
    # an item stating exactly the query (agentmem.statement: case, spacing and final punctuation
    # aside) gains this much, which puts it first
    exact_boost: float = 10.0
    rrf_k: int = 60
    candidates: int = 50  # ids taken from each list (at least 2 * k)
    # time: a date or period named in the query ("on 8 May 2023", "in June", "last week") adds
    # time_boost to items whose event time falls in it, give or take time_slack_days
    time_boost: float = 2.0
    time_slack_days: float = 3.0
    # graph expansion: items sharing a rare entity (linked to at most graph_max_df items) with one of
    # the graph_seeds best hits gain graph_boost (shared among the seeds); 0 turns it off
    graph_boost: float = 1.0
    graph_seeds: int = 5
    graph_max_df: int = 20
    # diversity: maximal marginal relevance among the hits; 0 = pure relevance, 1 = pure novelty
    diversity: float = 0.0
    # lexical search scores at most this many postings per query, rarest words first (see
    # Journal.lexical; windows get a fifth). FTS5's BM25 costs ~0.6 us per posting, so this bounds
    # the lexical work of a recall at any size (~0.5 ms). LoCoMo dev half, all categories, R@10 / R@25
    # (`agentmem bench locomo --set lexical_budget=N`): 250 -> 0.805 / 0.892, 500 -> 0.811 / 0.894,
    # 2,000 -> 0.810 / 0.895 (20,000 gave the same as 2,000)
    lexical_budget: int = 500
    # durability of each commit: "normal" survives a process crash, "full" also a power loss
    durability: Literal["normal", "full"] = "normal"
    # seconds to wait for another process's write lock before MemoryLockedError
    lock_timeout: float = 2.0

    def __post_init__(self) -> None:
        for name in ("stm_items", "stm_bytes", "ann_threshold", "ef_search", "rrf_k", "candidates",
                     "lexical_budget", "graph_seeds", "graph_max_df"):
            if int(getattr(self, name)) < 1:
                raise InvalidInputError(f"config {name} must be >= 1")
        for name in ("weight_vector", "weight_context", "weight_lexical", "weight_graph", "weight_grams",
                     "exact_boost", "time_boost", "time_slack_days", "graph_boost"):
            if not float(getattr(self, name)) >= 0.0:
                raise InvalidInputError(f"config {name} must be >= 0")
        if not 0.0 <= self.diversity < 1.0:
            raise InvalidInputError("config diversity must be in [0, 1)")
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


def memory_path(path: object) -> Path:
    """The memory directory named by ``path`` (a str or ``os.PathLike``); ``None`` is :func:`default_home`.
    An empty string is refused: ``Path("")`` would quietly be the working directory."""
    if path is None:
        return default_home()
    if not isinstance(path, str | os.PathLike) or isinstance(os.fspath(path), bytes):
        raise MemoryPathError(f"a memory path must be a str or pathlib.Path, got {type(path).__name__} "
                              f"({path!r}); pass e.g. agentmem.Memory('./memdir')")
    text = os.fspath(path)
    if not text.strip():
        raise MemoryPathError("the memory path is empty; pass a directory such as ./memdir, or leave it out "
                              "for $AGENTMEM_HOME (~/.agentmem)")
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme:  # a URL would otherwise quietly become a directory named "postgresql:" under the working one
        raise MemoryPathError(f"{scheme}:// memories are not supported by this agentmem (only directories; a "
                              "PostgreSQL backend is planned, not built); pass a directory such as ./memdir")
    return Path(text)
