"""Graph recall: items linked to specific entities named in the query, from the knowledge graph's
facts (entities linked to the items they came from). Entities linked to more than
``Config.graph_max_df`` items of the scope are skipped (see ``KnowledgeGraph.entity_items``). Recall's
other use of the graph, expanding from the best hits, is ``KnowledgeGraph.expand``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentmem.hookspecs import hookimpl

if TYPE_CHECKING:
    from agentmem.memory import Memory


@hookimpl
def recall_candidates(memory: Memory, query: str, scope: dict[str, str], k: int) -> list[int]:
    """Items linked to specific entities named in the query, most-linked first."""
    entities = memory.graph.find_entities(query)
    if not entities:
        return []
    found = memory.graph.entity_items(entities, scope, memory.config.graph_max_df)
    votes: dict[int, int] = {}
    for ids in found.values():
        for i in ids:
            votes[i] = votes.get(i, 0) + 1
    return sorted(votes, key=lambda i: (-votes[i], i))[:k]
