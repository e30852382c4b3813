"""Full-text search over the journal's FTS5 tables: BM25 queries inside a scope, document
frequencies and the word budget that bounds a query's cost, the corpus statistics STM scoring
shares, and their upkeep (segment merges, rebuild, integrity checks). Writes of rows to the tables
stay in the journal's transactions, with the rows they index; this reads them and maintains them.

The tables: ``items_fts`` (each long-term item's text), ``windows_fts`` (its context window, see
:mod:`agentmem.ltm.windows`) and ``grams_fts`` (gram terms, see :mod:`agentmem.grams`).
"""

from __future__ import annotations

import math
import operator
import re
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agentmem import scope as scopes
from agentmem.ltm import migrations, windows
from agentmem.ltm.filters import filter_clause

if TYPE_CHECKING:
    from agentmem.ltm.journal import Journal

_WORD = re.compile(r"\w+", re.UNICODE)
_score = operator.itemgetter(1)
SORT_HERE = 4096  # full-text matches up to which lexical() sorts them itself (see there)


def query_words(text: str, max_terms: int = 64) -> list[str]:
    """Distinct lower-cased words of a query, in order."""
    return list(dict.fromkeys(w.lower() for w in _WORD.findall(text)))[:max_terms]


def fts_query(words: Sequence[str]) -> str | None:
    """An FTS5 MATCH expression OR-ing ``words`` (each quoted: no operator injection)."""
    if not words:
        return None
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in words)


class FullTextIndex:
    """Reads of the journal's full-text tables (``journal.text``). Document frequencies are cached."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        # word -> (document frequency, max item id then, the cap it was counted to: exact if below)
        self._df: dict[str, tuple[int, int, float]] = {}
        self.writes = 0  # rows this connection indexed since its last merge (maybe_optimize)

    def tables(self) -> tuple[str, ...]:
        """The full-text tables of this journal (an older schema has no grams_fts)."""
        return ("items_fts", "windows_fts", "grams_fts")[: 3 if self._journal.has_grams else 2]

    def clear_cache(self) -> None:
        """Forget cached document frequencies (the tables were rebuilt)."""
        self._df.clear()

    def maybe_optimize(self, min_writes: int = 20_000, share: float = 0.2) -> bool:
        """Merge each full-text index into one segment once at least ``min_writes`` rows and ``share``
        of the memory were written since the last merge. Every commit adds a segment, and a query opens
        all of them (see docs/benchmarks.md for what merging saves). Each merge rewrites the whole
        index, so merges follow at least a fifth more rows (FTS5's own automerge keeps the segments
        between them few)."""
        j = self._journal
        if j.read_only or self.writes < max(min_writes, share * j.max_item_id()):
            return False
        with j.tx() as c:
            for table in self.tables():
                c.execute(f"INSERT INTO {table} ({table}) VALUES ('optimize')")
        self.writes = 0
        return True

    def rebuild(self) -> None:
        """Rebuild every full-text table from the long-term items, in one transaction."""
        with self._journal.tx() as c:
            c.execute("INSERT INTO items_fts (items_fts) VALUES ('rebuild')")  # from the view items_ltm
            windows.rebuild(c)
            if self._journal.has_grams:
                c.execute("INSERT INTO grams_fts (grams_fts) VALUES ('delete-all')")
                migrations.index_grams(c)
        self.clear_cache()

    def problems(self) -> list[str]:
        """What FTS5's checks find wrong with the tables (empty when healthy). Its full check is a
        write, so a read-only journal checks instead that items_fts holds no row of a deleted item.
        Caller holds the journal's lock."""
        conn = self._journal.conn
        try:
            if self._journal.read_only:
                conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.items_fts_docs "
                             "USING fts5vocab(main, items_fts, 'instance')")
                stale = conn.execute("SELECT COUNT(DISTINCT doc) FROM temp.items_fts_docs "
                                     "WHERE doc NOT IN (SELECT id FROM items WHERE tier = 'ltm')").fetchone()[0]
                return [f"full-text index: {stale} row(s) of deleted items are still indexed"] if stale else []
            for table in self.tables():
                conn.execute(f"INSERT INTO {table} ({table}, rank) VALUES ('integrity-check', 1)")
        except sqlite3.DatabaseError as exc:
            return [f"full-text index: {exc}"]
        return []

    def counted(self, word: str, table: str = "items_fts") -> int | None:
        """The cached count of ``word`` (a capped one stops at its cap), None if not counted yet."""
        cached = self._df.get(word if table == "items_fts" else f"{table}\0{word}")
        return None if cached is None else cached[0]

    def doc_freq(self, word: str, n: int | None = None, table: str = "items_fts", cap: int | None = None) -> int:
        """How many long-term items (``table="windows_fts"``: windows) contain ``word`` (as the
        full-text tokenizer sees it), or ``cap`` if that many or more: counting reads the word's
        postings, so a common word's exact count is costly (at 1M items, counting the words of 200
        queries took ~0.75 ms per recall) while a budget only needs to know it is over. Cached,
        refreshed when the memory has grown by a tenth since (``n``: the current highest item id, if
        known)."""
        if table == "grams_fts" and not self._journal.has_grams:
            return 0
        n = self._journal.max_item_id() if n is None else n
        key = word if table == "items_fts" else f"{table}\0{word}"
        limit = math.inf if cap is None else cap
        cached = self._df.get(key)
        if cached is not None and n <= cached[1] * 1.1 + 10 and (cached[0] < cached[2] or limit <= cached[2]):
            return int(min(cached[0], limit))
        match = fts_query([word])
        with self._journal.reading() as conn:
            df = int(conn.execute(
                f"SELECT count(*) FROM (SELECT rowid FROM {_fts_table(table)} WHERE {table} MATCH ? LIMIT ?)",
                (match, -1 if cap is None else cap)).fetchone()[0])
        if len(self._df) > 100_000:
            self._df.clear()
        self._df[key] = (df, n, limit)
        return df

    def fts_stats(self, table: str = "items_fts") -> tuple[int, int]:
        """(rows, tokens) indexed in a full-text table: the corpus statistics its bm25() uses."""
        if table == "grams_fts" and not self._journal.has_grams:
            return 0, 0
        with self._journal.reading() as conn:
            row = conn.execute(f"SELECT block FROM {_fts_table(table)}_data WHERE id = 1").fetchone()
        if not row or not row[0]:
            return 0, 0
        rows, at = _varint(row[0], 0)
        tokens, _ = _varint(row[0], at)
        return rows, tokens

    def budget_words(self, words: Sequence[str], budget: int | None, n: int | None = None) -> list[str]:
        """The query words a lexical search with ``budget`` uses (see :meth:`lexical`; ``n``: the
        highest item id, if known)."""
        if budget is None or not words:
            return list(words)
        n = self._journal.max_item_id() if n is None else n
        # a word with budget + 1 or more postings is never taken: its count need go no further
        dfs = sorted((self.doc_freq(w, n, cap=budget + 1), w) for w in words)
        chosen, total = [], 0
        for df, w in dfs:  # a word no long-term item has costs nothing, and may match a short-term one
            if total + df > budget:
                break
            chosen.append(w)
            total += df
        return chosen

    def lexical(self, query: str | Sequence[str], k: int, scope: dict[str, str], filters: dict[str, Any] | None = None,
                since: float | None = None, until: float | None = None,
                budget: int | None = None, windows: bool = False, table: str | None = None
                ) -> list[tuple[int, float]]:
        """BM25 search over the text of long-term items: [(id, score)] best first (score = -bm25,
        higher is better). ``query``: a text, or its words. ``windows=True`` searches the items'
        context windows instead (see agentmem.ltm.windows). Items still in STM are not indexed yet:
        :mod:`agentmem.lexicon` scores them.

        BM25 scores every posting of every query word, so cost grows with word frequency. With a
        ``budget``, words are taken rarest first while their postings add up to at most ``budget``;
        the words left out are the most common, whose weight in BM25 (IDF) is the smallest.
        ``table="grams_fts"`` searches the gram terms (:func:`agentmem.grams.grams`) instead."""
        words = self.budget_words(query_words(query) if isinstance(query, str) else query, budget)
        match = fts_query(words)
        if match is None:
            return []
        s_sql, s_params = scopes.clause(scope, "i.")
        f_sql, f_params = filter_clause(filters, since, until, "i.")
        fts = _fts_table(table) if table else "windows_fts" if windows else "items_fts"
        if fts == "grams_fts" and not self._journal.has_grams:
            return []
        sql = _lexical_sql(fts, s_sql + f_sql)
        params = [match, *s_params, *f_params]
        with self._journal.reading() as conn:
            # Matches are read unsorted and sorted here when there are few (a budget keeps them few):
            # SQLite's sorter cost more than the sort (10k items, one query: 0.35 -> 0.31 ms, windows
            # 0.25 -> 0.22). Many matches are left to SQLite, which keeps only the best k.
            cap = max(4 * k, SORT_HERE)
            rows = conn.execute(f"{sql} LIMIT ?", [*params, cap + 1]).fetchall()
            if len(rows) > cap:
                return conn.execute(f"{sql} ORDER BY r DESC, 1 LIMIT ?", [*params, k]).fetchall()
        rows.sort(key=_score, reverse=True)  # stable: equal scores stay in id order
        return rows[:k]

    def lexical_plan(self, scope: dict[str, str], filters: dict[str, Any] | None = None,
                     since: float | None = None, until: float | None = None, table: str = "items_fts") -> list[str]:
        """SQLite's plan for a :meth:`lexical` query (EXPLAIN QUERY PLAN details, outer loop first)."""
        s_sql, s_params = scopes.clause(scope, "i.")
        f_sql, f_params = filter_clause(filters, since, until, "i.")
        with self._journal.reading() as conn:
            rows = conn.execute(f"EXPLAIN QUERY PLAN {_lexical_sql(_fts_table(table), s_sql + f_sql)}",
                                     ['"x"', *s_params, *f_params]).fetchall()
        return [r[-1] for r in rows]


def _lexical_sql(fts: str, where: str) -> str:
    """The BM25 query over full-text table ``fts``, with ``where`` (scope, filter and time terms on
    ``items i``) if any. With terms, the full-text match must be the outer loop (CROSS JOIN fixes
    SQLite's join order): SQLite's planner otherwise starts from the items_scope index and runs the
    whole MATCH again for every item of the scope, O(scope x matches), 299 ms per recall at 10k
    items in one scope. Outer, the match runs once and each of its rows costs one primary-key lookup."""
    if not where:  # the whole memory: no join, no row lookup per match
        return f"SELECT rowid, -bm25({fts}) AS r FROM {fts} WHERE {fts} MATCH ?"
    return (f"SELECT i.id, -bm25({fts}) AS r FROM {fts} CROSS JOIN items i ON i.id = {fts}.rowid "
            f"WHERE {fts} MATCH ? {where}")


def _fts_table(name: str) -> str:
    if name not in ("items_fts", "windows_fts", "grams_fts"):
        raise ValueError(f"no full-text table {name!r}")
    return name


def _varint(buf: bytes, at: int) -> tuple[int, int]:
    """SQLite's variable-length integer at ``buf[at:]`` (FTS5 records use it): (value, next offset)."""
    value = 0
    for j in range(8):
        byte = buf[at + j]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at + j + 1
    return (value << 8) | buf[at + 8], at + 9
