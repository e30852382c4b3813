"""Numbered schema migrations of the journal. Append only; never edit a released step."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from agentmem.ltm import windows

MIGRATIONS: list[str] = [
    # 1: items, lexical index, facts, weights, merges, policy log
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE items (
        id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: a forgotten id is never reused
        text TEXT NOT NULL,
        metadata TEXT NOT NULL DEFAULT '{}',
        user TEXT, agent TEXT, session TEXT,
        created_at REAL NOT NULL,
        event_time REAL,
        tier TEXT NOT NULL DEFAULT 'stm' CHECK (tier IN ('stm', 'ltm')),
        content_hash TEXT NOT NULL,
        embedding BLOB NOT NULL,
        count INTEGER NOT NULL DEFAULT 1,
        importance REAL NOT NULL DEFAULT 0,
        uses INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX items_scope ON items (user, agent, session);
    CREATE INDEX items_tier ON items (tier);
    CREATE INDEX items_hash ON items (content_hash);
    CREATE VIRTUAL TABLE items_fts USING fts5 (
        text, content='items', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
    );
    CREATE TABLE merges (
        merged_id INTEGER PRIMARY KEY,
        canonical_id INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,
        similarity REAL NOT NULL,
        metadata TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX merges_canonical ON merges (canonical_id);
    CREATE TABLE facts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        subject TEXT NOT NULL, relation TEXT NOT NULL, object TEXT NOT NULL,
        item_id INTEGER REFERENCES items (id) ON DELETE CASCADE,
        user TEXT, agent TEXT, session TEXT,
        created_at REAL NOT NULL
    );
    CREATE INDEX facts_subject ON facts (subject);
    CREATE INDEX facts_object ON facts (object);
    CREATE INDEX facts_item ON facts (item_id);
    CREATE TABLE weights (
        name TEXT NOT NULL, version INTEGER NOT NULL,
        file TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
        metadata TEXT NOT NULL, created_at REAL NOT NULL,
        PRIMARY KEY (name, version)
    );
    CREATE TABLE weight_heads (name TEXT PRIMARY KEY, version INTEGER NOT NULL);
    CREATE TABLE log (id INTEGER PRIMARY KEY, at REAL NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL);
    """,
    # 2: context windows, see agentmem.ltm.windows (filled by POST_STEPS[2] from the items)
    """
    INSERT OR IGNORE INTO meta (key, value) VALUES ('context_window', '2');
    CREATE VIRTUAL TABLE windows_fts USING fts5 (
        text, content='', tokenize='porter unicode61 remove_diacritics 2'
    );
    """,
    # 3: content_hash becomes 8 bytes (was 64 hex characters): ~120 bytes less per item with its index
    # (recomputed from the texts by POST_STEPS[3])
    """
    DROP INDEX items_hash;
    """,
    # 4: the full-text indexes hold long-term items only (short-term ones are indexed when consolidated,
    # see agentmem.lexicon); items_fts takes its content from a view of them, so that FTS5's own
    # integrity check compares it with exactly those rows (refilled by POST_STEPS[4])
    """
    DROP TABLE items_fts;
    CREATE VIEW items_ltm AS SELECT id, text FROM items WHERE tier = 'ltm';
    CREATE VIRTUAL TABLE items_fts USING fts5 (
        text, content='items_ltm', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
    );
    """,
    # 5: content_hash identifies a statement (agentmem.statement.normal_form), not the exact text, so
    # "I love it." finds "i love it" in long-term memory (recomputed by POST_STEPS[5])
    "",
    # 6: passages of long texts (agentmem.ltm.passages; a writer embeds those of older items when it
    # opens) and gram terms for text without spaces and emoji (agentmem.grams; filled by POST_STEPS[6])
    """
    CREATE TABLE passages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        item_id INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,
        start INTEGER NOT NULL, end INTEGER NOT NULL,
        embedding BLOB NOT NULL
    );
    CREATE INDEX passages_item ON passages (item_id);
    CREATE VIRTUAL TABLE grams_fts USING fts5 (text, content='', tokenize='unicode61');
    """,
    # 7: API keys of `agentmem serve` (agentmem.serve.keys): a key's sha256 only, never the key; its
    # scope (NULL: not restricted on that field), read-only and admin flags; revoked keys are kept
    """
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        hash TEXT NOT NULL,
        user TEXT, agent TEXT, session TEXT,
        read_only INTEGER NOT NULL DEFAULT 0,
        admin INTEGER NOT NULL DEFAULT 0,
        note TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        revoked_at REAL
    );
    """,
]


def _rehash(c: sqlite3.Connection) -> None:
    _rehash_rows(c)
    c.execute("CREATE INDEX items_hash ON items (content_hash)")


def _rehash_rows(c: sqlite3.Connection) -> None:
    from agentmem.statement import content_hash

    last = 0
    while True:
        rows = c.execute("SELECT id, text FROM items WHERE id > ? ORDER BY id LIMIT 10000", (last,)).fetchall()
        if not rows:
            break
        c.executemany("UPDATE items SET content_hash = ? WHERE id = ?", [(content_hash(t), i) for i, t in rows])
        last = rows[-1][0]


def index_grams(c: sqlite3.Connection) -> None:
    from agentmem.grams import gram_text

    last = 0
    while True:
        rows = c.execute("SELECT id, text FROM items WHERE tier = 'ltm' AND id > ? ORDER BY id LIMIT 10000",
                         (last,)).fetchall()
        if not rows:
            break
        c.executemany("INSERT INTO grams_fts (rowid, text) VALUES (?, ?)",
                      [(i, g) for i, t in rows if (g := gram_text(t))])
        last = rows[-1][0]


def _long_term_only(c: sqlite3.Connection) -> None:
    if c.execute("SELECT 1 FROM items LIMIT 1").fetchone():
        c.execute("INSERT INTO items_fts (items_fts) VALUES ('rebuild')")
        windows.rebuild(c)


# Python steps run right after the SQL of the migration with that number, in the same transaction.
POST_STEPS: dict[int, Callable[[sqlite3.Connection], None]] = {
    2: windows.rebuild, 3: _rehash, 4: _long_term_only, 5: _rehash_rows, 6: index_grams}
