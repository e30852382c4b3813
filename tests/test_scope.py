"""agentmem.scope: the SQL, Python and key forms of a scope say the same thing."""

from __future__ import annotations

import itertools
import sqlite3

from agentmem import scope as scopes

VALUES = [None, "a", "b"]
ITEM_SCOPES = [scopes.from_columns(cols) for cols in itertools.product(VALUES, repeat=3)]
QUERIES = [{k: v for k, v in zip(scopes.KEYS, cols, strict=True) if v is not None}
           for cols in itertools.product(VALUES, repeat=3)]


def test_sql_python_and_keys_agree_on_every_pair() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, user, agent, session)")
    conn.executemany("INSERT INTO items VALUES (?, ?, ?, ?)",
                     [(j, *scopes.key(s)) for j, s in enumerate(ITEM_SCOPES)])
    for query in QUERIES:
        sql, params = scopes.clause(query, "i.")
        in_sql = {r[0] for r in conn.execute(f"SELECT id FROM items i WHERE 1{sql}", params)}
        in_python = {j for j, s in enumerate(ITEM_SCOPES) if scopes.contains(query, s)}
        by_key = {j for j, s in enumerate(ITEM_SCOPES) if scopes.contains_key(query, scopes.key(s))}
        assert in_sql == in_python == by_key, query
        # a query for a user reaches every item of that user, whatever its agent and session
        if query == {"user": "a"}:
            assert len(in_sql) == 9
    assert scopes.clause({}) == ("", [])
    assert scopes.name({"session": "s", "user": "u"}) == scopes.name({"user": "u", "session": "s"})


def test_a_key_round_trips_through_the_columns() -> None:
    for s in ITEM_SCOPES:
        assert scopes.from_columns(scopes.key(s)) == s


def test_the_key_clause_selects_one_item_key_exactly() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, user, agent, session)")
    conn.executemany("INSERT INTO items VALUES (?, ?, ?, ?)", [(j, *scopes.key(s)) for j, s in enumerate(ITEM_SCOPES)])
    for j, s in enumerate(ITEM_SCOPES):
        assert [r[0] for r in conn.execute(f"SELECT id FROM items WHERE {scopes.KEY_SQL}", scopes.key(s))] == [j]
