"""Graph-expanded recall, from the knowledge graph's facts (entities linked to the items they came from).

Two uses, both skipping "hub" entities linked to more than ``Config.graph_max_df`` items of the scope
(the speakers of a conversation, say), which connect everything and so say nothing:
- ``recall_candidates`` (a hook): items linked to specific entities named in the query;
- :func:`expand` (called by :mod:`agentmem.retrieval`): items that share a specific entity with the
  best hits, for multi-hop questions whose evidence is spread over items that name the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from agentmem.hookspecs import hookimpl
from agentmem.ltm.journal import scope_clause

if TYPE_CHECKING:
    from agentmem.memory import Memory


def _links(memory: Memory, entities: Iterable[str], scope: dict[str, str]) -> list[tuple[str, int]]:
    """(entity, item id) for every fact in ``scope`` with the entity as subject or object."""
    names = sorted(set(entities))
    if not names:
        return []
    marks = ",".join("?" * len(names))
    s_sql, s_params = scope_clause(scope)
    sql = (f"SELECT subject, item_id FROM facts WHERE subject IN ({marks}) AND item_id IS NOT NULL{s_sql} "
           f"UNION SELECT object, item_id FROM facts WHERE object IN ({marks}) AND item_id IS NOT NULL{s_sql}")
    with memory.journal.lock:
        return [(e, int(i)) for e, i in memory.journal.conn.execute(sql, [*names, *s_params, *names, *s_params])]


def _specific(links: list[tuple[str, int]], max_df: int, min_df: int = 1) -> dict[str, set[int]]:
    """Entity -> its items, for entities linked to at least ``min_df`` and at most ``max_df`` items."""
    items: dict[str, set[int]] = {}
    for entity, item in links:
        items.setdefault(entity, set()).add(item)
    return {e: ids for e, ids in items.items() if min_df <= len(ids) <= max_df}


@hookimpl
def recall_candidates(memory: Memory, query: str, scope: dict[str, str], k: int) -> list[int]:
    """Items linked to specific entities named in the query, most-linked first."""
    entities = memory.graph.find_entities(query)
    if not entities:
        return []
    found = _specific(_links(memory, entities, scope), memory.config.graph_max_df)
    votes: dict[int, int] = {}
    for ids in found.values():
        for i in ids:
            votes[i] = votes.get(i, 0) + 1
    return sorted(votes, key=lambda i: (-votes[i], i))[:k]


def expand(memory: Memory, seeds: list[int], scope: dict[str, str], max_df: int) -> dict[int, float]:
    """Items sharing a specific entity with ``seeds``: id -> share of the seeds that lead to it
    (each seed counts once per item). Seeds themselves gain too when they lead to each other."""
    if not seeds:
        return {}
    marks = ",".join("?" * len(seeds))
    with memory.journal.lock:
        rows = memory.journal.conn.execute(
            f"SELECT item_id, subject, object FROM facts WHERE item_id IN ({marks})", seeds).fetchall()
    seed_entities: dict[int, set[str]] = {}
    for item, s, o in rows:
        seed_entities.setdefault(int(item), set()).update((s, o))
    found = _specific(_links(memory, set().union(*seed_entities.values()) if seed_entities else (), scope),
                      max_df, min_df=2)
    gains: dict[int, float] = {}
    for seed, entities in seed_entities.items():
        reached = set().union(*(found.get(e, set()) for e in entities)) - {seed}
        for i in reached:
            gains[i] = gains.get(i, 0.0) + 1.0 / len(seeds)
    return gains
