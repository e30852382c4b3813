"""Scopes are partitions: random sequences of remember / recall / consolidate / facts / forget over
many overlapping scopes never return an item outside the query's scope, whichever path found it
(STM scan, vector search, lexical search, graph expansion) and whatever the query scope is (nested,
empty, unknown, SQL-looking). Texts share words and entities across scopes on purpose, so every path
has foreign candidates to leak."""

from __future__ import annotations

import random
import tempfile
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agentmem
from tests.conftest import LONG

SCOPES: list[dict[str, str]] = [
    {}, {"user": "ann"}, {"user": "bob"}, {"user": "ann", "session": "s1"}, {"user": "ann", "session": "s2"},
    {"user": "bob", "session": "s1"}, {"agent": "planner"}, {"user": "ann", "agent": "planner"},
    {"user": "ann", "agent": "planner", "session": "s1"}, {"session": "s1"},
    {"user": "' OR '1'='1"}, {"user": "ann%"}, {"user": "../bob"},
]
QUERY_SCOPES = [*SCOPES, {"user": "nobody"}, {"agent": "planner", "session": "s2"}, {"user": "ANN"}]
WORDS = ["Paris", "Lisbon", "Alice", "Bruno", "parcel", "ferry", "invoice", "garden", "seven", "blue"]
SEEN: Counter[str] = Counter()  # which paths produced hits, over the whole run


def in_scope(item_scope: dict[str, str], query: dict[str, str]) -> bool:
    return all(item_scope.get(k) == v for k, v in query.items())


@settings(max_examples=100 if LONG else 6, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1), stm_items=st.sampled_from([4, 16, 64, 10_000]),
       n_ops=st.integers(300, 600), p_recall=st.floats(0.2, 0.5))
def test_no_recall_path_crosses_a_scope(seed: int, stm_items: int, n_ops: int, p_recall: float) -> None:
    """Thousands of calls over the examples (hypothesis draws the seed and the mix; a seeded stream
    draws the calls, so that each example is long enough to build real overlap)."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as d, agentmem.Memory(d, embedder="hash", stm_items=stm_items) as mem:
        owner: dict[int, dict[str, str]] = {}  # our own record of each id's scope
        for _ in range(n_ops):
            r = rng.random()
            words = rng.choices(WORDS, k=rng.randint(1, 5))
            if r < p_recall:
                check_recall(mem, owner, rng.choice(QUERY_SCOPES), " ".join(words))
            elif r < 0.85 or not owner:
                scope = rng.choice(SCOPES)
                meta = {"speaker": words[0], "facts": [[words[0], "met", words[-1]]]}
                owner[mem.remember(" ".join(words) + f" {len(owner)}", metadata=meta, scope=scope)] = scope
            elif r < 0.92:
                mem.graph.add_fact(words[0], "near", words[-1], item=rng.choice(sorted(owner)))
            elif r < 0.97:
                mem.consolidate()
            else:
                for gone in mem.forget(rng.choice(sorted(owner))):
                    owner.pop(gone, None)


def check_recall(mem: agentmem.Memory, owner: dict[int, dict[str, str]], scope: dict[str, str], query: str) -> None:
    """Each path's own candidates stay in scope (not only the fused result, which re-checks)."""
    qvec = mem.embedder.embed_batch([query])[0]
    paths = {
        "vector": [i for i, _ in mem.vector.search(qvec, 50, mem.vector.mask(scope))],
        "lexical": [i for i, _ in mem.journal.text.lexical(query, 50, scope)],
        "graph": mem.graph.items_for(mem.graph.find_entities(query), scope, hops=2),
    }
    hits = mem.recall(query, k=10, scope=scope)
    paths["stm"] = [h.id for h in hits if h.source == "stm"]
    paths["fused"] = [h.id for h in hits]
    for path, ids in paths.items():
        SEEN[path] += len(ids)
        leaks = [(i, owner[i]) for i in ids if not in_scope(owner[i], scope)]
        assert not leaks, f"{path} returned {leaks[:3]} for scope {scope}"
    assert all(h.scope == owner[h.id] for h in hits)
    for entity in query.split():
        for f in mem.graph.facts(entity, scope=scope):
            assert f.item is None or in_scope(owner[f.item], scope), f"fact {f} leaked into {scope}"


def test_every_recall_path_was_exercised() -> None:
    """The property above means little unless STM, long-term and graph hits all occurred."""
    if not SEEN:
        test_no_recall_path_crosses_a_scope()
    assert all(SEEN[p] > 20 for p in ("stm", "vector", "lexical", "graph", "fused")), dict(SEEN)


def test_filters_and_scopes_together(hmem: agentmem.Memory) -> None:
    """Metadata filters narrow a scope; they never widen it."""
    for n, scope in enumerate(SCOPES * 4):
        hmem.remember(f"shared words about the blue ferry {n}", metadata={"tag": n % 3}, scope=scope)
    hmem.consolidate()
    for scope in QUERY_SCOPES:
        for hit in hmem.recall("blue ferry", k=50, scope=scope, filters={"tag": 1}):
            assert in_scope(hit.scope, scope) and hit.metadata["tag"] == 1
