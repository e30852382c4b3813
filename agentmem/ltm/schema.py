"""The journal's schema as code: the columns an item row has, its codec, the version check and the
numbered migrations applied in order (the steps themselves are in :mod:`agentmem.ltm.migrations`)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentmem.errors import SchemaError
from agentmem.ltm import migrations
from agentmem.types import Item

ITEM_COLUMNS = "id, text, metadata, user, agent, session, created_at, event_time, tier, count, importance"
INSERT_ITEM = ("INSERT INTO items (id, text, metadata, user, agent, session, created_at, event_time, content_hash, "
               "embedding, importance) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
PAGE_SIZE = 16384  # bytes per SQLite page of a new journal
# Importance of an item not consolidated yet. Not 0.0: SQLite stores an integral REAL in 0 bytes, so
# the row would grow by 8 when consolidation sets the real importance, and full pages would split
# (measured: 17% of the items table left empty at 100k items).
UNSCORED = 1e-12
GRAMS_SCHEMA = 6  # the schema version that added grams_fts and passages (a reader of an older file does without)


def latest() -> int:
    """The schema version this code writes."""
    return len(migrations.MIGRATIONS)


def check_version(conn: sqlite3.Connection, path: Path) -> int:
    """The file's schema version; SchemaError if it is newer than this code understands."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > latest():
        raise SchemaError(
            f"{path} has schema version {version}, newer than this agentmem understands "
            f"({latest()}); upgrade agentmem-toolkit to open it")
    return version


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Apply the missing migrations, each in a transaction of its own with its version bump; return
    the version now (:func:`latest`). ``conn`` is in autocommit mode and no transaction is open."""
    for number in range(check_version(conn, path), latest()):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in split_sql(migrations.MIGRATIONS[number]):
                conn.execute(statement)
            if number + 1 in migrations.POST_STEPS:
                migrations.POST_STEPS[number + 1](conn)
            conn.execute(f"PRAGMA user_version = {number + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return latest()


def item_from_row(row: tuple[Any, ...]) -> Item:
    """An :class:`Item` from a row of ``SELECT {ITEM_COLUMNS}``."""
    scope = {}
    if row[3] is not None:
        scope["user"] = row[3]
    if row[4] is not None:
        scope["agent"] = row[4]
    if row[5] is not None:
        scope["session"] = row[5]
    meta = row[2]
    return Item(row[0], row[1], {} if meta == "{}" else json.loads(meta), scope, row[6], row[7], row[8], row[9],
                row[10])


def chunks(seq: list[Any], n: int) -> Iterator[list[Any]]:
    """``seq`` in slices of at most ``n`` (SQLite bounds the parameters of one statement)."""
    for start in range(0, len(seq), n):
        yield seq[start:start + n]


def split_sql(script: str) -> list[str]:
    """Statements of a migration script, whole (a trigger body's inner statements stay inside it)."""
    statements, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            statements.append(buf.strip())
            buf = ""
    rest = "\n".join(x for x in buf.splitlines() if not x.strip().startswith("--")).strip()
    return statements + ([rest] if rest else [])
