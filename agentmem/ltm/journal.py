"""The SQLite journal: the durable source of truth for items, facts and weight versions.

WAL mode; every public write is one transaction, committed before the call returns. The FTS5 table
``items_fts`` (external content) is kept in step inside the same transactions, as are the context
windows (``windows_fts``, :mod:`agentmem.ltm.windows`), the gram terms of text without spaces and of
emoji (``grams_fts``, :mod:`agentmem.grams`) and the passages of long texts (:mod:`agentmem.ltm.passages`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from agentmem import scope as scopes
from agentmem.errors import CorruptionError, MemoryClosedError
from agentmem.grams import gram_text
from agentmem.ltm import schema, windows
from agentmem.ltm.checkpoint import Checkpointer
from agentmem.ltm.filters import FilterQueries, filter_clause
from agentmem.ltm.fulltext import FullTextIndex
from agentmem.ltm.passages import PassageRows
from agentmem.ltm.readers import Lent, ReadConnections
from agentmem.statement import content_hash
from agentmem.types import Fact, Item


class Journal:
    """One SQLite database file. Thread-safe: writes use one connection under ``lock``, reads borrow their own."""

    def __init__(self, path: Path, *, read_only: bool = False, synchronous: str = "NORMAL") -> None:
        self.path = path
        self.read_only = read_only
        self.lock = threading.RLock()
        self.text = FullTextIndex(self)  # BM25 over the full-text tables, and their upkeep
        self.filters = FilterQueries(self)  # the items a metadata filter lets through
        self.passages = PassageRows(self)  # the passages table, read with their items
        self._width: int | None = None  # context window width (meta 'context_window'), read once
        self.checkpointer: Checkpointer | None = None  # the writer's WAL checkpoints (checkpoint.py)
        self._next_id: int | None = None  # the id the next inserted item gets (this is the one writer)
        self._wal = path.with_name(path.name + "-wal")
        self._tx_thread: int | None = None  # the thread inside tx(), whose reads must see its writes
        self.schema = 0  # the schema version of the file: a reader may open one an older writer keeps
        uri = f"file:{quote(str(path))}" + ("?mode=ro" if read_only else "")  # quoted: '?' and '#' are data
        self.conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                                    timeout=10.0)
        try:
            self.conn.execute("PRAGMA foreign_keys = ON")
            if not read_only:
                # a new file gets 16 KiB pages (no effect on an existing one): an item row (~1.7 KB
                # with a 384-d embedding) fits 2 to a 4 KiB page with 17% left unused, 9 to a 16 KiB one
                self.conn.execute(f"PRAGMA page_size = {schema.PAGE_SIZE}")
                self.conn.execute("PRAGMA journal_mode = WAL")
                self.conn.execute(f"PRAGMA synchronous = {synchronous}")
                self.conn.execute("PRAGMA wal_autocheckpoint = 0")  # see agentmem.ltm.checkpoint
                # the log file is cut back when it restarts, so its size is what awaits a checkpoint
                self.conn.execute("PRAGMA journal_size_limit = 0")
                self.schema = schema.migrate(self.conn, path)
                self.checkpointer = Checkpointer(uri, self._wal)
            else:
                self.schema = schema.check_version(self.conn, path)
            self.readers = ReadConnections(uri, path, read_only)
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            if isinstance(exc, sqlite3.OperationalError):  # locked, unwritable: not damage
                raise
            raise CorruptionError(f"journal {path} is not a readable SQLite database ({exc}); restore it "
                                  "from a backup (the vector cache and graph are rebuilt from it)") from exc
        except BaseException:
            self.conn.close()
            raise

    # --- schema -------------------------------------------------------------------------------

    @property
    def has_grams(self) -> bool:
        """Whether the file has the gram index and passages (schema 6; a reader may open an older one)."""
        return self.schema >= schema.GRAMS_SCHEMA


    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT), rolled back on error."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            self._tx_thread = threading.get_ident()
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            finally:
                self._tx_thread = None
            self.conn.execute("COMMIT")
            self._committed()

    def reading(self) -> Lent:
        """A connection for reads, without the lock (:mod:`agentmem.ltm.readers`: recalls read in
        parallel); inside this thread's own write transaction, the writer's, which sees its writes."""
        if self._tx_thread == threading.get_ident():
            return Lent(self.conn)
        return Lent(self.readers.get())

    def _committed(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.committed(self.conn)

    def checkpoint(self) -> None:
        """Copy the whole write-ahead log into the database file and empty it, now (waiting up to
        the busy timeout for a background checkpoint or a reader). After a bulk load the log holds
        up to ~160 MB until the background checkpoint has caught up; ``Memory.flush`` ends with this,
        so that the copy is part of the work it waits for and the memory at rest is its database."""
        if self.read_only:
            return
        with self.lock, contextlib.suppress(sqlite3.OperationalError):  # busy: the background one goes on
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()  # a poke still pending is
            # skipped by the checkpointer: the log is small now

    def close(self) -> None:
        """Close the connection; later use raises MemoryClosedError instead of sqlite3 errors."""
        with self.lock:
            if self.checkpointer is not None:
                self.checkpointer.close()
                self.checkpointer = None
            self.readers.close()
            self.conn.close()
            self.conn = _ClosedConnection(self.path)  # type: ignore[assignment]

    # --- meta ----------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.reading().conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.tx() as c:
            c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
        self._width = None

    def window_width(self) -> int:
        """Neighbours on each side of an item's context window (0: none kept); fixed when the
        memory is created, so read once."""
        if self._width is None:
            with self.reading() as conn:
                self._width = windows.width(conn)
        return self._width

    # --- items ---------------------------------------------------------------------------------

    def insert_items(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Insert rows (keys: text, metadata (JSON str), scope, created_at, event_time, content_hash,
        embedding (float32 array), optionally passages: [(start, end, embedding)], see
        :mod:`agentmem.ltm.passages`) in one transaction, in the STM tier; return their new ids in order.
        They are indexed for full-text search when consolidation moves them to LTM
        (:meth:`apply_consolidation`; until then :mod:`agentmem.lexicon` scores them in memory)."""
        with self.lock:
            # ids assigned here, so the rows go in with one executemany; AUTOINCREMENT's counter
            # (never reusing a forgotten id) moves with them. The writer lock makes this connection
            # the only one inserting: the next id is read once, then counted here.
            if self._next_id is None:
                row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'items'").fetchone()
                self._next_id = max(int(row[0]) if row else 0, self.max_item_id()) + 1
            first = self._next_id
            ids = list(range(first, first + len(rows)))
            values = [(i, r["text"], r["metadata"], r["scope"].get("user"), r["scope"].get("agent"),
                       r["scope"].get("session"), r["created_at"], r["event_time"], r["content_hash"],
                       np.ascontiguousarray(r["embedding"], dtype=np.float32).tobytes(), schema.UNSCORED)
                      for i, r in zip(ids, rows, strict=True)]
            passages = [(i, a, b, np.ascontiguousarray(v, dtype=np.float32).tobytes())
                        for i, r in zip(ids, rows, strict=True) for a, b, v in r.get("passages") or ()]
            if len(values) == 1 and not passages:  # one statement is its own transaction: no BEGIN and COMMIT
                self.conn.execute(schema.INSERT_ITEM, values[0])
                self._committed()
            else:
                with self.tx() as c:
                    c.executemany(schema.INSERT_ITEM, values)
                    if passages:
                        c.executemany("INSERT INTO passages (item_id, start, end, embedding) VALUES (?, ?, ?, ?)",
                                      passages)
            self._next_id = first + len(rows)
        return ids

    def get_items(self, ids: Sequence[int]) -> dict[int, Item]:
        out: dict[int, Item] = {}
        with self.reading() as conn:
            for chunk in schema.chunks(list(ids), 500):
                marks = ",".join("?" * len(chunk))
                for row in conn.execute(
                        f"SELECT {schema.ITEM_COLUMNS} FROM items WHERE id IN ({marks})", chunk):
                    out[row[0]] = schema.item_from_row(row)
        return out

    def iter_items(self, tier: str | None = None, batch: int = 10_000) -> Iterator[Item]:
        where = "WHERE tier = ?" if tier else ""
        params: tuple[Any, ...] = (tier,) if tier else ()
        last = 0
        while True:
            with self.reading() as conn:
                rows = conn.execute(
                    f"SELECT {schema.ITEM_COLUMNS} FROM items {where} {'AND' if where else 'WHERE'} id > ? "
                    f"ORDER BY id LIMIT ?", (*params, last, batch)).fetchall()
            if not rows:
                return
            for row in rows:
                yield schema.item_from_row(row)
            last = rows[-1][0]

    def scope_items(self, scope: dict[str, str], limit: int, before: int | None = None,
                    filters: dict[str, Any] | None = None) -> list[Item]:
        """The items of ``scope`` (either tier, passing ``filters``, through the value index of their first key),
        newest first: ``limit`` with ids below ``before``."""
        s_sql, s_params = scopes.clause(scope)
        f_sql, f_params = filter_clause(filters, None, None)
        if filters:
            self.filters.index(next(iter(filters)))
        with self.reading() as conn:
            rows = conn.execute(
                f"SELECT {schema.ITEM_COLUMNS} FROM items WHERE id < ? {s_sql}{f_sql} ORDER BY id DESC LIMIT ?",
                [before if before is not None else 1 << 62, *s_params, *f_params, limit]).fetchall()
        return [schema.item_from_row(r) for r in rows]

    def vectors(self, ids: Sequence[int] | None = None, tier: str | None = None
                ) -> tuple[np.ndarray, np.ndarray, list[dict[str, str]]]:
        """(ids int64 (n,), embeddings float32 (n, d), scopes) of the given items, or of a whole tier."""
        rows: list[tuple[Any, ...]] = []
        cols = "id, embedding, user, agent, session"
        with self.reading() as conn:
            if ids is None:
                where, params = ("WHERE tier = ?", [tier]) if tier else ("", [])
                rows = conn.execute(f"SELECT {cols} FROM items {where} ORDER BY id", params).fetchall()
            else:
                for chunk in schema.chunks(list(ids), 500):
                    marks = ",".join("?" * len(chunk))
                    rows += conn.execute(f"SELECT {cols} FROM items WHERE id IN ({marks})",
                                              chunk).fetchall()
        out_ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
        dim = len(rows[0][1]) // 4 if rows else 0
        return (out_ids, vecs.reshape(len(rows), dim) if rows else vecs.reshape(0, 0),
                [scopes.from_columns(r[2:5]) for r in rows])

    def times(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(ids, times) of the given items: each item's event time, else its creation time."""
        rows: list[tuple[int, float]] = []
        with self.reading() as conn:
            for chunk in schema.chunks(list(ids), 500):
                marks = ",".join("?" * len(chunk))
                rows += conn.execute(f"SELECT id, COALESCE(event_time, created_at) FROM items "
                                          f"WHERE id IN ({marks})", chunk).fetchall()
        return (np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
                np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows)))

    def ids(self, tier: str | None = None) -> np.ndarray:
        where, params = ("WHERE tier = ?", (tier,)) if tier else ("", ())
        with self.reading() as conn:
            rows = conn.execute(f"SELECT id FROM items {where} ORDER BY id", params).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def ltm_tail(self, scope_key: Sequence[str | None], n: int) -> list[str]:
        """Texts of the last ``n`` long-term items of one exact scope (user, agent, session), oldest first."""
        with self.reading() as conn:
            rows = conn.execute(
                f"SELECT text FROM items WHERE {windows.SCOPE_SQL} AND tier = 'ltm' ORDER BY id DESC LIMIT ?",
                (*scope_key, n)).fetchall()
        return [r[0] for r in reversed(rows)]

    def max_item_id(self) -> int:
        return int(self.reading().conn.execute("SELECT COALESCE(MAX(id), 0) FROM items").fetchone()[0])

    def same_text_in_ltm(self, items: Sequence[Item]) -> dict[int, int]:
        """For items whose statement (:func:`content_hash`) already exists in LTM in the same scope:
        item id -> that LTM id (the caller compares the texts)."""
        wanted = {(content_hash(i.text), scopes.key(i.scope)): i.id for i in items}
        hashes = list({h for h, _ in wanted})
        out: dict[int, int] = {}
        with self.reading() as conn:
            for chunk in schema.chunks(hashes, 500):
                marks = ",".join("?" * len(chunk))
                # INDEXED BY: with "tier = 'ltm'" in the WHERE, SQLite would pick the tier index,
                # which matches almost every row, and scan the table once per batch
                rows = sorted(conn.execute(
                    f"SELECT id, content_hash, user, agent, session, tier FROM items INDEXED BY items_hash "
                    f"WHERE content_hash IN ({marks})", chunk))
                for i, h, u, a, s, tier in rows:
                    src = wanted.get((h, (u, a, s)))
                    if tier == "ltm" and src is not None and src not in out:
                        out[src] = i
        return out

    def apply_consolidation(self, promote: Sequence[tuple[Item, float]], merges: Sequence[tuple[Item, int, float]],
                            facts: Sequence[tuple[Fact, dict[str, str]]]) -> list[tuple[Any, ...]]:
        """Promote STM items to LTM with their importance (``promote``: (item, importance), in id
        order) and index them for full-text search, fold duplicates into their canonical item
        (counted; each duplicate's own text, metadata and times kept in ``merges``, readable by its
        id through :meth:`merged_item`) and add facts, all in one transaction, logged (``log``).
        Returns the fact rows (id, subject, relation, object, item_id, scope)."""
        now = time.time()
        fact_rows = []
        promote = sorted(promote, key=lambda p: p[0].id)
        with self.tx() as c:
            c.executemany("UPDATE items SET tier = 'ltm', importance = ? WHERE id = ?",
                          [(v, item.id) for item, v in promote])
            for dup, canonical_id, similarity in merges:
                c.execute("UPDATE items SET count = count + ? WHERE id = ?", (dup.count, canonical_id))
                c.execute("INSERT OR REPLACE INTO merges (merged_id, canonical_id, similarity, metadata, "
                          "created_at) VALUES (?, ?, ?, ?, ?)",
                          (dup.id, canonical_id, similarity,
                           json.dumps({"text": dup.text, "metadata": dup.metadata, "created_at": dup.created_at,
                                       "event_time": dup.event_time}), now))
                c.execute("UPDATE facts SET item_id = ? WHERE item_id = ?", (canonical_id, dup.id))
                self._delete_rows(c, [dup.id])
            for fact, scope in facts:
                cur = c.execute(
                    "INSERT INTO facts (subject, relation, object, item_id, user, agent, session, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (fact.subject, fact.relation, fact.object, fact.item, *scopes.key(scope), now))
                fact_rows.append((cur.lastrowid, fact.subject, fact.relation, fact.object, fact.item, scope))
            # the duplicates are gone now: windows are those of the items that stay
            c.executemany("INSERT INTO items_fts (rowid, text) VALUES (?, ?)", [(i.id, i.text) for i, _ in promote])
            if self.has_grams:
                c.executemany("INSERT INTO grams_fts (rowid, text) VALUES (?, ?)",
                              [(i.id, g) for i, _ in promote if (g := gram_text(i.text))])
            windows.after_insert(c, [(i.id, i.text, i.scope) for i, _ in promote], self.window_width())
            c.execute("INSERT INTO log (at, action, detail) VALUES (?, 'consolidate', ?)", (now, json.dumps(
                {"promoted": len(promote), "merged": len(merges), "facts": len(facts)})))
        self.text.writes += len(promote)
        return fact_rows

    def same_statement(self, text: str, scope: dict[str, str], since: float | None = None,
                       until: float | None = None, filters: dict[str, Any] | None = None) -> list[int]:
        """Ids of the items in ``scope`` (either tier, passing the filters and time bounds) stating
        ``text`` (:func:`content_hash`)."""
        s_sql, s_params = scopes.clause(scope)
        f_sql, f_params = filter_clause(filters, since, until)
        with self.reading() as conn:
            rows = conn.execute(
                f"SELECT id FROM items INDEXED BY items_hash WHERE content_hash = ? {s_sql}{f_sql} "
                "ORDER BY id LIMIT 100",
                [content_hash(text), *s_params, *f_params]).fetchall()
        return [r[0] for r in rows]

    def merged_item(self, item_id: int) -> Item | None:
        """The item merged away under ``item_id``, as it was remembered (its own text, metadata and
        times; scope, tier and count are its group's), with ``merged_into`` set; None if not merged.
        Merges recorded before texts were kept read with the canonical's text."""
        with self.reading() as conn:
            row = conn.execute(
                f"SELECT m.metadata, {', '.join('i.' + c.strip() for c in schema.ITEM_COLUMNS.split(','))} "
                "FROM merges m JOIN items i ON i.id = m.canonical_id WHERE m.merged_id = ?", (item_id,)).fetchone()
        if row is None:
            return None
        own = json.loads(row[0])
        group = schema.item_from_row(row[1:])
        return dataclasses.replace(
            group, id=item_id, text=own.get("text", group.text), metadata=own.get("metadata", group.metadata),
            created_at=own.get("created_at", group.created_at), event_time=own.get("event_time", group.event_time),
            merged_into=group.id)

    def merged_into(self, canonical_id: int) -> list[int]:
        with self.reading() as conn:
            return [r[0] for r in conn.execute("SELECT merged_id FROM merges WHERE canonical_id = ?", (canonical_id,))]

    def least_important(self, keep: int, half_life_days: float) -> list[int]:
        """LTM ids beyond the ``keep`` most important of their scope (importance decayed by age; ties:
        the older goes). Each scope (user, agent, session, as stored) is its own partition: one
        user's new items never push out another's."""
        now = time.time()
        with self.reading() as conn:
            over = conn.execute(
                "SELECT 1 FROM items WHERE tier = 'ltm' GROUP BY user, agent, session HAVING COUNT(*) > ? "
                "LIMIT 1", (keep,)).fetchone()
            if over is None:
                return []
            rows = conn.execute(
                "SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY user, agent, session ORDER BY "
                "importance * pow(0.5, (? - COALESCE(event_time, created_at)) / 86400.0 / ?) + 0.1 * uses DESC, "
                "id DESC) AS place FROM items WHERE tier = 'ltm') WHERE place > ? ORDER BY id",
                (now, half_life_days, keep)).fetchall()
        return [r[0] for r in rows]

    def canonical(self, item_id: int) -> int | None:
        """The id an item lives under now: itself, the item it was merged into, or None if gone."""
        with self.reading() as conn:
            if conn.execute("SELECT 1 FROM items WHERE id = ?", (item_id,)).fetchone():
                return item_id
            row = conn.execute("SELECT canonical_id FROM merges WHERE merged_id = ?", (item_id,)).fetchone()
        return int(row[0]) if row else None

    def delete_items(self, ids: Sequence[int], reason: str) -> None:
        """Remove items everywhere in the journal (text, FTS, facts, merge records) and log why."""
        with self.tx() as c:
            self._delete_rows(c, ids)
            c.execute("INSERT INTO log (at, action, detail) VALUES (?, 'forget', ?)",
                      (time.time(), json.dumps({"ids": list(ids), "reason": reason})))

    def _delete_rows(self, c: sqlite3.Connection, ids: Sequence[int]) -> None:
        for i in ids:
            row = c.execute("SELECT text, tier FROM items WHERE id = ?", (i,)).fetchone()
            if row is None:
                continue
            if row[1] == "ltm":  # only long-term items are in the full-text indexes
                c.execute("INSERT INTO items_fts (items_fts, rowid, text) VALUES ('delete', ?, ?)", (i, row[0]))
                if self.has_grams and (grams := gram_text(row[0])):
                    c.execute("INSERT INTO grams_fts (grams_fts, rowid, text) VALUES ('delete', ?, ?)", (i, grams))
                windows.before_delete(c, i)
            c.execute("DELETE FROM facts WHERE item_id = ?", (i,))
            c.execute("DELETE FROM merges WHERE canonical_id = ?", (i,))
            c.execute("DELETE FROM items WHERE id = ?", (i,))

    def add_uses(self, uses: dict[int, int]) -> None:
        with self.tx() as c:
            c.executemany("UPDATE items SET uses = uses + ? WHERE id = ?", [(n, i) for i, n in uses.items()])

    def counts(self) -> dict[str, int]:
        with self.reading() as conn:
            tiers = dict(conn.execute("SELECT tier, COUNT(*) FROM items GROUP BY tier").fetchall())
            facts, merges, weights = conn.execute("SELECT (SELECT COUNT(*) FROM facts), (SELECT COUNT(*) FROM merges), "
                                                  "(SELECT COUNT(*) FROM weights)").fetchone()
        return {"items": sum(tiers.values()), "stm": tiers.get("stm", 0), "ltm": tiers.get("ltm", 0),
                "facts": facts, "merged": merges, "weight_versions": weights}

    def integrity(self) -> list[str]:
        """Problems found by SQLite's own checks, the full-text tables' included (empty when healthy)."""
        with self.lock:
            rows = self.conn.execute("PRAGMA integrity_check").fetchall()
            return [r[0] for r in rows if r[0] != "ok"] + self.text.problems()

class _ClosedConnection:
    """Stands in for the connection of a closed journal."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        raise MemoryClosedError(f"memory journal {self.path} is closed; open it again with agentmem.Memory(path)")

    executemany = execute

    def close(self) -> None:
        pass
