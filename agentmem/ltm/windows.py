"""Context windows: each item's text joined with its neighbours', for lexical recall in context.

A conversation turn often answers a question asked in the turn before it, so the words a later
query shares with an *exchange* are split across items. Each item is therefore also indexed by its
window — its own text plus the texts of the ``context_window`` items (meta key, default 2)
remembered just before and just after it in the same scope — in the full-text table
``windows_fts`` (schema: migration 2). On LoCoMo this lifts lexical recall@10 from 0.63 to 0.74.

Only long-term items have indexed windows, made of long-term neighbours (items enter LTM in id
order, and until then :mod:`agentmem.lexicon` scores their windows in memory).

The table is contentless (window texts are not stored twice): the journal calls these functions
inside its write transactions, and since every window is always the one its current neighbours
define, the text indexed for a window can be recomputed to delete it exactly. Windows are thus as
durable as the items, and forgetting an item removes its text from every window it was part of.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from agentmem.scope import KEY_SQL as SCOPE_SQL
from agentmem.scope import key as scope_key

_LTM_SCOPE_SQL = SCOPE_SQL + " AND tier = 'ltm'"
_INSERT = "INSERT INTO windows_fts (rowid, text) VALUES (?, ?)"
_DELETE = "INSERT INTO windows_fts (windows_fts, rowid, text) VALUES ('delete', ?, ?)"


def width(c: sqlite3.Connection) -> int:
    """How many neighbours on each side a window holds (0: windows are not kept)."""
    row = c.execute("SELECT value FROM meta WHERE key = 'context_window'").fetchone()
    return int(row[0]) if row else 0


def window(texts: Sequence[str], p: int, w: int) -> str:
    """The window of position ``p`` in a scope's texts (in id order): up to ``w`` texts each side."""
    return " ".join(texts[max(0, p - w): p + w + 1])


def after_insert(c: sqlite3.Connection, rows: Sequence[tuple[int, str, dict[str, str]]],
                 w: int | None = None) -> None:
    """Index the windows of new long-term items (id, text, scope), in id order, and extend the
    windows of the ``width`` items before them in each scope (``w``: the width, when the caller
    knows it). Cost: one query per scope in the batch, one full-text insert per new item and
    ``width`` re-indexed windows per scope."""
    w = width(c) if w is None else w
    if w <= 0 or not rows:
        return
    groups: dict[tuple[str | None, ...], list[tuple[int, str]]] = {}
    for item_id, text, scope in rows:
        groups.setdefault(scope_key(scope), []).append((item_id, text))
    deletes: list[tuple[int, str]] = []
    inserts: list[tuple[int, str]] = []
    for key, new in groups.items():
        prev = c.execute(f"SELECT id, text FROM items WHERE {_LTM_SCOPE_SQL} AND id < ? ORDER BY id DESC LIMIT ?",
                         (*key, new[0][0], 2 * w)).fetchall()[::-1]
        ids = [i for i, _ in prev] + [i for i, _ in new]
        before = [t for _, t in prev]
        texts = before + [t for _, t in new]
        for p in range(max(0, len(prev) - w), len(ids)):
            if p < len(prev):
                deletes.append((ids[p], window(before, p, w)))
            inserts.append((ids[p], window(texts, p, w)))
    c.executemany(_DELETE, deletes)
    c.executemany(_INSERT, inserts)


def before_delete(c: sqlite3.Connection, item_id: int) -> None:
    """Called before long-term item ``item_id`` is deleted: unindex its window and re-index its
    neighbours' windows without it (so its text survives in no window)."""
    w = width(c)
    row = c.execute("SELECT user, agent, session, text FROM items WHERE id = ?", (item_id,)).fetchone()
    if row is None or w <= 0:
        return
    scope, text = row[:3], row[3]
    before = c.execute(f"SELECT id, text FROM items WHERE {_LTM_SCOPE_SQL} AND id < ? ORDER BY id DESC LIMIT ?",
                       (*scope, item_id, 2 * w)).fetchall()[::-1]
    after = c.execute(f"SELECT id, text FROM items WHERE {_LTM_SCOPE_SQL} AND id > ? ORDER BY id LIMIT ?",
                      (*scope, item_id, 2 * w)).fetchall()
    old_ids = [i for i, _ in before] + [item_id] + [i for i, _ in after]
    old = [t for _, t in before] + [text] + [t for _, t in after]
    new = old[: len(before)] + old[len(before) + 1:]
    me = len(before)
    c.execute(_DELETE, (item_id, window(old, me, w)))
    for p in [*range(max(0, me - w), me), *range(me + 1, min(len(old), me + w + 1))]:
        q = p if p < me else p - 1  # position in the scope once the item is gone
        c.execute(_DELETE, (old_ids[p], window(old, p, w)))
        c.execute(_INSERT, (old_ids[p], window(new, q, w)))


def rebuild(c: sqlite3.Connection) -> None:
    """Re-index every window from the long-term items (after a migration or a change of width)."""
    c.execute("INSERT INTO windows_fts (windows_fts) VALUES ('delete-all')")
    w = width(c)
    if w <= 0:
        return
    key: tuple[str | None, ...] | None = None
    ids: list[int] = []
    texts: list[str] = []
    rows = c.execute("SELECT user, agent, session, id, text FROM items WHERE tier = 'ltm' "
                     "ORDER BY user, agent, session, id")
    for user, agent, session, item_id, text in [*rows, (None, None, None, None, None)]:
        if (user, agent, session) != key or item_id is None:
            c.executemany(_INSERT, [(i, window(texts, p, w)) for p, i in enumerate(ids)])
            key, ids, texts = (user, agent, session), [], []
        if item_id is not None:
            ids.append(item_id)
            texts.append(text)
