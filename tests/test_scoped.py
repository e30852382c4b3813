"""Issue 15: recall inside a scope takes the same path as recall over the whole memory."""

from __future__ import annotations

import random

import pytest

import agentmem

WORDS = ["harbour", "ferry", "noon", "gulls", "tour", "sunday", "market", "bread", "cheese", "river", "bridge",
         "train", "station", "ticket"]


@pytest.fixture
def tenants(hmem: agentmem.Memory) -> agentmem.Memory:
    rng = random.Random(7)
    for u in range(20):
        texts = [" ".join(rng.choice(WORDS) for _ in range(6)) + f" note {u}-{j}" for j in range(30)]
        hmem.remember_many(texts, [{"kind": "a" if j % 3 else "b"} for j in range(30)], scope={"user": f"u{u}"},
                           times=[1_700_000_000 + 3600 * j for j in range(30)])
    hmem.consolidate()
    return hmem


@pytest.mark.parametrize("table", ["items_fts", "windows_fts", "grams_fts"])
@pytest.mark.parametrize("restriction", [{}, {"filters": {"kind": "a"}}, {"since": 1.0, "until": 2e9}])
def test_a_scoped_full_text_query_starts_from_the_full_text_index(
        tenants: agentmem.Memory, table: str, restriction: dict) -> None:
    """The guard against the 148x regression: SQLite had started from the items_scope index and run
    the MATCH once per item of the scope. The plan's outer loop must be the full-text table."""
    plan = tenants.journal.text.lexical_plan({"user": "u3"}, restriction.get("filters"), restriction.get("since"),
                                        restriction.get("until"), table=table)
    assert plan[0].startswith(f"SCAN {table} VIRTUAL TABLE"), plan
    assert any("PRIMARY KEY" in step for step in plan[1:]), plan


def test_scoped_lexical_matches_are_the_unscoped_ones_inside_the_scope(tenants: agentmem.Memory) -> None:
    j = tenants.journal
    everything = dict(j.text.lexical(["ferry", "cheese"], 10_000, {}))
    in_scope = {i for i, it in j.get_items(list(everything)).items() if it.scope == {"user": "u5"}}
    for windows in (False, True):
        scoped = dict(j.text.lexical(["ferry", "cheese"], 10_000, {"user": "u5"}, windows=windows))
        if not windows:
            assert scoped == {i: everything[i] for i in in_scope}
        assert set(scoped) <= {i for i, it in j.get_items(list(scoped)).items() if it.scope == {"user": "u5"}}
    a_only = dict(j.text.lexical(["ferry"], 10_000, {"user": "u5"}, {"kind": "a"}))
    assert a_only and all(it.metadata["kind"] == "a" for it in j.get_items(list(a_only)).values())


@pytest.mark.parametrize("tag", ["a", "b"])  # "a": two thirds of the scope (probed), "b": a third
def test_filtered_recall_returns_exactly_the_items_that_pass(tenants: agentmem.Memory, tag: str) -> None:
    scope = {"user": "u4"}
    want = {i.id for i in tenants if i.scope == scope and i.metadata["kind"] == tag}
    hits = tenants.recall("harbour ferry", k=50, scope=scope, filters={"kind": tag})
    assert {h.id for h in hits} <= want and len(hits) == min(50, len(want))
    rare = tenants.remember("ferry to the harbour at noon", {"kind": "rare"}, scope=scope)
    tenants.consolidate()
    assert [h.id for h in tenants.recall("harbour ferry", k=5, scope=scope, filters={"kind": "rare"})] == [rare]
    assert tenants.recall("harbour ferry", k=5, scope={"user": "u5"}, filters={"kind": "rare"}) == []


def test_a_filter_reads_its_value_index_not_the_scope(tenants: agentmem.Memory) -> None:
    j = tenants.journal
    ids = j.filters.ids({"user": "u2"}, {"kind": "b"}, None, None)
    assert j.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'items_meta_kind'").fetchone()
    assert len(ids) == 10
    plan = [r[-1] for r in j.conn.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM items INDEXED BY items_meta_kind "
        "WHERE user = ? AND json_extract(metadata, '$.kind') = ?", ("u2", "b"))]
    assert "items_meta_kind" in plan[0], plan


def test_the_filter_probe_looks_its_ids_up_by_primary_key(tenants: agentmem.Memory) -> None:
    """Once a filter's value index existed, SQLite read it (every row with the value: 16 ms per
    recall for a 99% filter at 100k) instead of looking up the few hundred probed ids."""
    j = tenants.journal
    j.filters.ids({"user": "u2"}, {"kind": "a"}, None, None)  # creates the value index
    for n in (3, 50, 500):  # from ~50 ids up, SQLite had preferred the value index
        plan = j.filters.passing_plan({"kind": "a"}, n)
        assert len(plan) == 1 and "INTEGER PRIMARY KEY" in plan[0], (n, plan)
    ids = list(range(1, 300))
    assert j.filters.passing(ids, {"kind": "a"}) == {i.id for i in tenants if i.id in ids and i.metadata["kind"] == "a"}
