"""BM25 over the items in short-term memory, computed in memory.

The journal's full-text indexes (``items_fts`` over item texts, ``windows_fts`` over context windows,
see :mod:`agentmem.ltm.windows`) hold long-term items only: an item is indexed when consolidation
moves it to LTM, in one transaction with the rest of its batch. Indexing each remembered item in its
own commit wrote a full-text segment per index per call (0.33 of the 0.41 ms of SQL in a durable
``remember``), and a near-duplicate merged away at consolidation had to be unindexed again.

Recall still finds short-term items by their words: :class:`Lexicon` keeps the terms of each STM item
and scores items and windows with the formula of FTS5's ``bm25()`` (k1 = 1.2, b = 0.75), with the
corpus statistics (row count, average length, document frequency) of the index plus the STM items
themselves, so the scores it returns are on the scale of the index's. Terms come from SQLite's own
tokenizer (:class:`Terms`), so a word matches here exactly when it would match in the index.
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from agentmem.scope import Key as ScopeKey
from agentmem.scope import key as scope_key
from agentmem.types import Item

TOKENIZE = "porter unicode61 remove_diacritics 2"  # the journal's full-text tokenizer (migration 1)
K1, B = 1.2, 0.75  # FTS5 bm25() constants
_WORD = re.compile(r"\w+", re.UNICODE)

# one scope's window members: term counts, token lengths (long-term tail first), STM ids, tail length
Run = tuple[list[dict[str, int]], list[int], list[int], int]


class Terms:
    """Words to index terms, as an FTS5 table with :data:`TOKENIZE` produces them (lower-cased,
    diacritics folded, Porter-stemmed). Unknown words go through an in-memory FTS5 table once, then
    come from a cache; a word can give no term or several (e.g. ``a_b``)."""

    def __init__(self, tokenize: str = TOKENIZE, max_cached: int = 200_000) -> None:
        self._conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self._conn.execute(f"CREATE VIRTUAL TABLE t USING fts5 (text, content='', tokenize='{tokenize}')")
        self._conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
        self._cache: dict[str, tuple[str, ...]] = {}
        self._max = max_cached
        self._lock = threading.Lock()

    def of_words(self, words: Iterable[str]) -> list[tuple[str, ...]]:
        """The terms of each (lower-cased) word, in order."""
        words = list(words)
        cache = self._cache
        # an ASCII number is its own term (no folding, no stemming): no need to ask the tokenizer
        missing = [w for w in dict.fromkeys(words) if w not in cache and not (w.isascii() and w.isdigit())]
        learned = self._learn(missing) if missing else {}
        out = []
        for w in words:
            terms = learned.get(w)
            if terms is None:
                terms = cache.get(w)
                if terms is None and w.isascii() and w.isdigit():
                    terms = (w,)
                if terms is None:  # dropped by another thread's cache reset meanwhile
                    terms = self._learn([w])[w]
            out.append(terms)
        return out

    def term_set(self, words: Iterable[str]) -> set[str]:
        """Every term of (lower-cased) ``words``, as a set: the cached ones without a call per word."""
        out: set[str] = set()
        cache = self._cache
        missing = []
        for w in words:
            terms = cache.get(w)
            if terms is None:
                missing.append(w)
            else:
                out.update(terms)
        for terms in self.of_words(missing) if missing else ():
            out.update(terms)
        return out

    def of_text(self, text: str) -> list[str]:
        """Every term of ``text`` in order (its length is the text's length as FTS5 counts it)."""
        return [t for terms in self.of_words(_WORD.findall(text.lower())) for t in terms]

    def _learn(self, words: list[str]) -> dict[str, tuple[str, ...]]:
        with self._lock:
            if len(self._cache) + len(words) > self._max:
                self._cache.clear()
            found: dict[int, list[str]] = {}
            c = self._conn
            c.execute("BEGIN")
            try:
                c.executemany("INSERT INTO t (rowid, text) VALUES (?, ?)", enumerate(words, 1))
                for term, doc in c.execute("SELECT term, doc FROM v ORDER BY doc, offset"):
                    found.setdefault(doc, []).append(term)
                c.execute("INSERT INTO t (t) VALUES ('delete-all')")
            finally:
                c.execute("COMMIT")
            learned = {word: tuple(found.get(j, ())) for j, word in enumerate(words, 1)}
            self._cache.update(learned)
            return learned


_TERMS: Terms | None = None
_TERMS_LOCK = threading.Lock()


def default_terms() -> Terms:
    """The process's shared :class:`Terms` (its cache serves every memory)."""
    global _TERMS
    with _TERMS_LOCK:
        if _TERMS is None:
            _TERMS = Terms()
        return _TERMS


@dataclass(frozen=True)
class Stats:
    """Corpus statistics of a full-text index: rows, total tokens; and a document frequency lookup."""

    rows: int
    tokens: int
    doc_freq: Callable[[str], int]  # query word -> rows of the index containing it


class Lexicon:
    """Terms of the items in STM, kept in step with it (``add``/``remove``), scored with BM25.

    ``add`` only queues items: they are tokenized when a search first needs them, so a bulk load
    that consolidates each batch right away (``remember_many``) never tokenizes here (doing it
    eagerly cost 10k items 20% of their ingest rate).

    Items of one scope arrive in increasing id order and every STM id is above every LTM id (a
    consolidation takes all of STM), so an STM item's context window is the run of STM items around
    it, completed on the left by the scope's last long-term items (``tail``)."""

    def __init__(self, terms: Terms) -> None:
        self.terms = terms
        self.tf: dict[int, dict[str, int]] = {}  # item id -> term -> occurrences
        self.length: dict[int, int] = {}  # item id -> tokens
        self.postings: dict[str, set[int]] = {}  # term -> item ids
        self.order: dict[ScopeKey, list[int]] = {}  # scope -> its STM ids, ascending
        self.scope_of: dict[int, ScopeKey] = {}
        self.position: dict[int, int] = {}  # item id -> its index in ``order[its scope]``
        self.pending: dict[int, Item] = {}  # added, not tokenized yet

    def __len__(self) -> int:
        return len(self.tf) + len(self.pending)

    def __contains__(self, item_id: int) -> bool:
        return item_id in self.tf or item_id in self.pending

    def add(self, items: Sequence[Item]) -> None:
        self.pending.update((item.id, item) for item in items)

    def _index_pending(self) -> None:
        items, self.pending = sorted(self.pending.values(), key=lambda i: i.id), {}
        for item in items:
            counts, length = self._counts(item.text)
            self.tf[item.id] = counts
            self.length[item.id] = length
            for t in counts:
                self.postings.setdefault(t, set()).add(item.id)
            key = scope_key(item.scope)
            ids = self.order.setdefault(key, [])
            self.scope_of[item.id] = key
            if ids and ids[-1] > item.id:  # not expected (ids grow); keep the order right anyway
                ids.append(item.id)
                ids.sort()
                self.position.update((i, p) for p, i in enumerate(ids))
            else:
                self.position[item.id] = len(ids)
                ids.append(item.id)

    def remove(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        for i in ids:
            self.pending.pop(i, None)
        gone = {i for i in ids if i in self.tf}
        if not gone:
            return
        for i in gone:
            for t in self.tf.pop(i):
                posting = self.postings[t]
                posting.discard(i)
                if not posting:
                    del self.postings[t]
            del self.length[i]
            del self.position[i]
        for key in {self.scope_of.pop(i) for i in gone}:
            kept = [i for i in self.order[key] if i not in gone]
            if kept:
                self.order[key] = kept
                self.position.update((i, p) for p, i in enumerate(kept))
            else:
                del self.order[key]

    def scores(self, words: Sequence[str], stats: Stats, keep: Callable[[int], bool],
               width: int | None = None, tail: Callable[[ScopeKey], list[str]] | None = None,
               scopes: Callable[[ScopeKey], bool] | None = None) -> list[tuple[int, float]]:
        """BM25 of the STM items passing ``keep(id)`` for query ``words``, best first, as FTS5 would
        score them were they in the index described by ``stats`` (the STM documents added to its
        counts). With ``width`` (and ``tail``: the texts of a scope's last long-term items, oldest
        first), each item's context window is scored instead of its own text; ``scopes`` says which
        scope keys the query can match (the others' tails are not read)."""
        if self.pending:
            self._index_pending()
        if not self.tf or not words:
            return []
        phrases = self.terms.of_words(words)
        if not any(phrases):
            return []
        if width is None:
            stm_tokens = sum(self.length.values())
            runs = None
        else:
            runs = self._runs(width, tail, scopes)
            stm_tokens = sum(_window_tokens(lengths, lead, width) for _, lengths, _, lead in runs.values())
            if scopes is not None:
                runs = {key: run for key, run in runs.items() if scopes(key)}
        n = stats.rows + len(self.tf)  # one STM document per item, its text or its window
        avgdl = (stats.tokens + stm_tokens) / n if n else 1.0
        out: dict[int, float] = {}
        for word, phrase in zip(words, phrases, strict=True):
            if not phrase:
                continue
            freq = self._frequencies(phrase) if runs is None else self._window_frequencies(phrase, runs, width or 0)
            if not freq:
                continue
            hits = min(n, stats.doc_freq(word) + len(freq))  # a cached frequency may be stale
            idf = math.log((n - hits + 0.5) / (hits + 0.5))
            idf = idf if idf > 0 else 1e-6
            for i, (f, dl) in freq.items():
                out[i] = out.get(i, 0.0) + idf * f * (K1 + 1) / (f + K1 * (1 - B + B * dl / avgdl))
        ranked = [(i, s) for i, s in out.items() if keep(i)]
        ranked.sort(key=lambda x: (-x[1], x[0]))
        return ranked

    def _frequencies(self, phrase: tuple[str, ...]) -> dict[int, tuple[int, int]]:
        """item id -> (occurrences of ``phrase``, tokens). A multi-term phrase counts as often as its
        rarest term: an approximation of FTS5's adjacent-terms match, for words such as ``a_b``."""
        ids = set.intersection(*(self.postings.get(t, set()) for t in phrase))
        return {i: (min(self.tf[i][t] for t in phrase), self.length[i]) for i in ids}

    def _runs(self, width: int, tail: Callable[[ScopeKey], list[str]] | None,
              scopes: Callable[[ScopeKey], bool] | None = None) -> dict[ScopeKey, Run]:
        """Per scope: the term counts and lengths of its window members (long-term tail, then STM
        items), the STM ids, and how many tail members lead (a scope not in ``scopes``: none; its
        windows only count towards the average length)."""
        runs = {}
        for key, ids in self.order.items():
            wanted = width > 0 and (scopes is None or scopes(key))
            before = tail(key)[-width:] if tail is not None and wanted else []
            counts = [self._counts(t) for t in before]
            tfs = [c for c, _ in counts] + [self.tf[i] for i in ids]
            lengths = [n for _, n in counts] + [self.length[i] for i in ids]
            runs[key] = (tfs, lengths, ids, len(before))
        return runs

    def _window_frequencies(self, phrase: tuple[str, ...], runs: dict[ScopeKey, Run], width: int
                            ) -> dict[int, tuple[int, int]]:
        """STM item id -> (occurrences of ``phrase`` in its window, the window's tokens)."""
        members: dict[ScopeKey, dict[int, int]] = {}  # scope -> member position -> occurrences
        for i, (f, _) in self._frequencies(phrase).items():
            key = self.scope_of[i]
            if key in runs:
                members.setdefault(key, {})[runs[key][3] + self.position[i]] = f
        out: dict[int, tuple[int, int]] = {}
        for key, (tfs, lengths, ids, lead) in runs.items():
            member = members.get(key, {})
            member.update((q, f) for q in range(lead) if (f := min(tfs[q].get(t, 0) for t in phrase)))
            if not member:
                continue
            owners = {p for q in member for p in range(max(lead, q - width), min(len(tfs), q + width + 1))}
            for p in owners:
                lo, hi = max(0, p - width), p + width + 1
                out[ids[p - lead]] = (sum(member.get(q, 0) for q in range(lo, min(hi, len(tfs)))),
                                      sum(lengths[lo:hi]))
        return out

    def _counts(self, text: str) -> tuple[dict[str, int], int]:
        terms = self.terms.of_text(text)
        counts: dict[str, int] = {}
        for t in terms:
            counts[t] = counts.get(t, 0) + 1
        return counts, len(terms)


def _window_tokens(lengths: list[int], lead: int, width: int) -> int:
    """Total tokens of the windows of positions ``lead..`` of a run of member ``lengths``."""
    total = 0
    last = len(lengths) - 1
    for q, n in enumerate(lengths):
        # windows p in [lead, last] with |p - q| <= width contain member q
        owners = min(last, q + width) - max(lead, q - width) + 1
        if owners > 0:
            total += owners * n
    return total
