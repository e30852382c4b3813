"""Graph-expanded recall: items linked to entities named in the query (and their neighbours)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentmem.hookspecs import hookimpl

if TYPE_CHECKING:
    from agentmem.memory import Memory


@hookimpl
def recall_candidates(memory: Memory, query: str, scope: dict[str, str], k: int) -> list[int]:
    entities = memory.graph.find_entities(query)
    if not entities:
        return []
    return memory.graph.items_for(entities, scope, hops=2)[: k]
