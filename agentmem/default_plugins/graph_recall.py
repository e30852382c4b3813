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
from agentmem.scope import clause as scope_clause

if TYPE_CHECKING:
    from agentmem.memory import Memory


def _specific(memory: Memory, entities: Iterable[str], scope: dict[str, str], max_df: int,
              min_df: int = 1) -> dict[str, set[int]]:
    """Entity -> the items of ``scope`` linked to it (as subject or object of a fact), for entities
    linked to at least ``min_df`` and at most ``max_df`` items. Reads at most ``max_df + 1`` links
    per entity and role, so a hub costs no more than a rare entity: two queries with a limit each
    rather than one UNION, whose limit SQLite applied only after reading every link of a hub (at 1M
    items: 0.12 -> 0.02 ms per query, same results)."""
    s_sql, s_params = scope_clause(scope)
    as_subject = f"SELECT item_id FROM facts WHERE subject = ? AND item_id IS NOT NULL{s_sql} LIMIT ?"
    as_object = f"SELECT item_id FROM facts WHERE object = ? AND item_id IS NOT NULL{s_sql} LIMIT ?"
    out: dict[str, set[int]] = {}
    with memory.journal.lock:
        conn = memory.journal.conn
        for entity in sorted(set(entities)):
            items = {int(r[0]) for r in conn.execute(as_subject, [entity, *s_params, max_df + 1])}
            if len(items) <= max_df:  # past max_df it is a hub either way
                items.update(int(r[0]) for r in conn.execute(as_object, [entity, *s_params, max_df + 1]))
            if min_df <= len(items) <= max_df:
                out[entity] = items
    return out


@hookimpl
def recall_candidates(memory: Memory, query: str, scope: dict[str, str], k: int) -> list[int]:
    """Items linked to specific entities named in the query, most-linked first."""
    entities = memory.graph.find_entities(query)
    if not entities:
        return []
    found = _specific(memory, entities, scope, memory.config.graph_max_df)
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
    found = _specific(memory, set().union(*seed_entities.values()) if seed_entities else (), scope,
                      max_df, min_df=2)
    gains: dict[int, float] = {}
    for seed, entities in seed_entities.items():
        reached = set().union(*(found.get(e, set()) for e in entities)) - {seed}
        for i in reached:
            gains[i] = gains.get(i, 0.0) + 1.0 / len(seeds)
    return gains
