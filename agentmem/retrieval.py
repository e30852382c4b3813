"""Recall: gather ranked evidence lists (STM, vector, lexical, graph, plugins) and fuse them.

Fusion is weighted reciprocal rank: ``score(id) = sum_l w_l / (rrf_k + rank_l(id))``. Ranks are robust
to the different score scales of cosine similarity and BM25, which is why we fuse ranks, not scores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agentmem.types import Item


@dataclass(frozen=True)
class Ranked:
    """One evidence list: item ids best first, with the weight the fusion gives it."""

    name: str
    ids: list[int]
    weight: float


def rrf(lists: list[Ranked], rrf_k: int) -> list[tuple[int, float, set[str]]]:
    """Fuse ranked lists; return (id, fused score, names of lists it came from), best first."""
    scores: dict[int, float] = {}
    origin: dict[int, set[str]] = {}
    for ranked in lists:
        if ranked.weight <= 0:
            continue
        for rank, item_id in enumerate(ranked.ids):
            scores[item_id] = scores.get(item_id, 0.0) + ranked.weight / (rrf_k + rank + 1)
            origin.setdefault(item_id, set()).add(ranked.name)
    order = sorted(scores, key=lambda i: (-scores[i], i))
    return [(i, scores[i], origin[i]) for i in order]


def item_matcher(scope: Mapping[str, str], filters: Mapping[str, Any] | None, since: float | None,
                 until: float | None) -> Callable[[Item], bool]:
    """A predicate with the same meaning as the journal's SQL scope/filter/time clauses."""

    def norm(v: Any) -> Any:
        return int(v) if isinstance(v, bool) else v

    def keep(item: Item) -> bool:
        if any(item.scope.get(k) != v for k, v in scope.items()):
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
