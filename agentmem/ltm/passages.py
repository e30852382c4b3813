"""Passages: embeddings of the parts of a long text, so that every part of it is found by meaning.

A sentence embedder reads only the first few hundred tokens of a text (all-MiniLM-L6-v2: 256), so
one vector per item leaves the rest of a long document unsearchable by meaning. A text longer than
the embedder's ``passage_chars`` is therefore also embedded in overlapping passages of about that
many characters (:func:`split`); the journal stores each passage's span and vector (table
``passages``, migration 6: the source of truth, deleted with its item), and :class:`PassageIndex`
keeps them searchable. Recall scores an item by the best of its own cosine and its passages', so a
document is one hit however many of its passages match.

The index is held in memory and filled from the journal when a memory opens (it is not saved beside
the vector cache): passages exist only for long texts, so it is small next to the item vectors.
:class:`PassageRows` (``journal.passages``) reads and adds the journal's rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from agentmem import scope as scopes
from agentmem.ltm.schema import chunks
from agentmem.ltm.vector import VectorIndex

if TYPE_CHECKING:
    from agentmem.ltm.journal import Journal

_WORD = re.compile(r"\S+")
OVERLAP = 0.25  # share of a passage repeated at the start of the next: a sentence cut at one end is whole in the other


def split(text: str, size: int) -> list[tuple[int, int]]:
    """Character spans (start, end) of overlapping passages of at most ``size`` characters covering
    ``text``, cut between words where there are any; [] when the text fits in one (``len <= size``)."""
    if size < 1 or len(text) <= size:
        return []
    words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    pieces: list[tuple[int, int]] = []  # words, with any longer than a passage cut into passage-sized parts
    for a, b in words:
        pieces.extend((s, min(b, s + size)) for s in range(a, b, size))
    spans: list[tuple[int, int]] = []
    first = 0
    while first < len(pieces):
        last = first
        while last + 1 < len(pieces) and pieces[last + 1][1] - pieces[first][0] <= size:
            last += 1
        spans.append((pieces[first][0], pieces[last][1]))
        if last + 1 >= len(pieces):
            break
        # the next passage starts OVERLAP of a passage before this one's end, but always moves on
        back = pieces[last][1] - int(size * OVERLAP)
        nxt = next((j for j in range(first + 1, last + 1) if pieces[j][0] >= back), last + 1)
        first = nxt
    return spans


def with_passages(rows: list[dict[str, Any]], size: int, embed: Callable[[list[str]], np.ndarray]) -> list[int]:
    """Give each row (a dict with ``text``) longer than ``size`` characters its passages, as
    ``row["passages"] = [(start, end, vector)]``, embedding every passage of ``rows`` in one batch;
    return the positions of those rows."""
    spans = {j: split(r["text"], size) for j, r in enumerate(rows) if len(r["text"]) > size}
    if not spans:
        return []
    vecs = iter(embed([rows[j]["text"][a:b] for j, sp in spans.items() for a, b in sp]))
    for j, sp in spans.items():
        rows[j]["passages"] = [(a, b, next(vecs)) for a, b in sp]
    return list(spans)


class PassageIndex:
    """Passage vectors searchable by cosine, each passage knowing its item (``owner``)."""

    def __init__(self, dim: int) -> None:
        # exact search below the threshold; no background worker: the index is rebuilt at each open
        self.index = VectorIndex(dim, background=False)
        self.owner: dict[int, int] = {}  # passage id -> item id
        self.of_item: dict[int, list[int]] = {}  # item id -> its passage ids

    def __len__(self) -> int:
        return len(self.owner)

    def add(self, passage_ids: np.ndarray, owners: Iterable[int], vecs: np.ndarray,
            scopes: list[dict[str, str]], times: list[float]) -> None:
        """Add passages (ids from the journal), each with its item's id, scope and time."""
        owners = [int(o) for o in owners]
        if not owners:
            return
        self.index.add(np.asarray(passage_ids, dtype=np.int64), vecs, scopes, times=times)
        for p, o in zip(np.asarray(passage_ids).tolist(), owners, strict=True):
            self.owner[p] = o
            self.of_item.setdefault(o, []).append(p)

    def remove_items(self, item_ids: Iterable[int]) -> None:
        """Drop the passages of these items (those without passages are ignored)."""
        gone = [p for i in item_ids for p in self.of_item.pop(int(i), ())]
        if gone:
            self.index.remove(gone)
            for p in gone:
                del self.owner[p]

    def search(self, query: np.ndarray, n: int, scope: dict[str, str], allowed: np.ndarray | None,
               since: float | None = None, until: float | None = None) -> dict[int, float]:
        """item id -> its best passage cosine, for the items owning the ``n`` best passages in
        ``scope`` (and among ``allowed`` items, when given; with their item's time in the bounds)."""
        if not self.owner:
            return {}
        rows = None
        if allowed is not None:
            rows = np.fromiter((p for i in allowed.tolist() for p in self.of_item.get(i, ())), dtype=np.int64)
            if not len(rows):
                return {}
        mask = self.index.mask(scope, rows, since, until)
        if mask is not None and not mask.any():
            return {}
        best: dict[int, float] = {}
        for p, s in self.index.search(query, n, mask):
            o = self.owner[p]
            if s > best.get(o, -2.0):
                best[o] = s
        return best

    def best_of(self, item_ids: Iterable[int], query: np.ndarray) -> dict[int, float]:
        """item id -> its best passage cosine, for those of ``item_ids`` that have passages."""
        out = {}
        for i in item_ids:
            ps = self.of_item.get(int(i))
            if ps:
                out[int(i)] = float(self.index.scores_of(ps, query).max())
        return out

    def close(self) -> None:
        self.index.close()


class PassageRows:
    """The journal's ``passages`` table (``journal.passages``). Passages of new items are written by
    :meth:`Journal.insert_items` in the items' transaction and deleted with their items."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    def read(self, ids: Sequence[int] | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, str]], list[float]]:
        """(passage ids, item ids, embeddings (n, d), scopes, times) of the passages of the given
        items, or of every item; scope and time are the item's."""
        cols = ("SELECT p.id, p.item_id, p.embedding, i.user, i.agent, i.session, "
                "COALESCE(i.event_time, i.created_at) FROM passages p JOIN items i ON i.id = p.item_id")
        rows: list[tuple[Any, ...]] = []
        j = self._journal
        with j.reading() as conn:
            if not j.has_grams:
                pass
            elif ids is None:
                rows = conn.execute(f"{cols} ORDER BY p.id").fetchall()
            else:
                for chunk in chunks(list(ids), 500):
                    rows += conn.execute(f"{cols} WHERE p.item_id IN ({','.join('?' * len(chunk))}) "
                                           "ORDER BY p.id", chunk).fetchall()
        dim = len(rows[0][2]) // 4 if rows else 0
        vecs = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), dim)
        return (np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
                np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows)), vecs,
                [scopes.from_columns(r[3:6]) for r in rows],
                [float(r[6]) for r in rows])

    def missing(self, longer_than: int) -> list[tuple[int, str]]:
        """(id, text) of items longer than ``longer_than`` characters that have no passages."""
        j = self._journal
        with j.reading() as conn:
            return conn.execute(
                "SELECT id, text FROM items WHERE length(text) > ? AND id NOT IN (SELECT item_id FROM passages) "
                "ORDER BY id", (longer_than,)).fetchall()

    def add(self, rows: Sequence[tuple[int, int, int, np.ndarray]]) -> None:
        """Store passages (item id, start, end, embedding) of existing items, in one transaction."""
        with self._journal.tx() as c:
            c.executemany("INSERT INTO passages (item_id, start, end, embedding) VALUES (?, ?, ?, ?)",
                          [(i, a, b, np.ascontiguousarray(v, dtype=np.float32).tobytes()) for i, a, b, v in rows])
