"""An outside author's vector store: exact search in numpy, written against agentmem's public API only
(``agentmem.hookimpl``, ``agentmem.scope``, the protocol in ``agentmem.ltm.protocols``).

Registered by the contract tests with ``agentmem.plugins.register_plugin(numpy_store)``; an installed
plugin would name this module in its ``agentmem`` entry point instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from agentmem import hookimpl
from agentmem import scope as scopes

MARK = "numpy-store-1"  # written into the file: another store's file is refused, and rebuilt by the memory


class NumpyStore:
    """Every row in one float32 array; masks and searches by brute force."""

    def __init__(self, dim: int, **options: Any) -> None:
        self.dim = dim
        self.n = 0
        self._vecs = np.zeros((0, dim), dtype=np.float32)
        self._ids = np.zeros(0, dtype=np.int64)
        self._alive = np.zeros(0, dtype=bool)
        self._times = np.zeros(0, dtype=np.float64)
        self._scopes: list[dict[str, str]] = []
        self._row: dict[int, int] = {}

    has_ann = False

    def __len__(self) -> int:
        return int(np.count_nonzero(self._alive))

    def __contains__(self, item_id: object) -> bool:
        row = self._row.get(int(item_id))  # type: ignore[call-overload]
        return row is not None and bool(self._alive[row])

    def ids(self) -> np.ndarray:
        return self._ids[self._alive]

    def vectors_of(self, ids: list[int]) -> np.ndarray:
        return self._vecs[[self._row[int(i)] for i in ids]].reshape(len(ids), self.dim)

    def scores_of(self, ids: list[int], query: np.ndarray) -> np.ndarray:
        out = np.zeros(len(ids), dtype=np.float32)
        for j, i in enumerate(ids):
            if i in self:
                out[j] = self._vecs[self._row[int(i)]] @ query
        return out

    def reserve(self, extra: int) -> None:
        pass

    def add(self, ids: np.ndarray, vecs: np.ndarray, scopes_: list[dict[str, str]], *, times: Any = None,
            defer_ann: bool = False) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        when = np.full(len(ids), np.nan) if times is None else np.asarray(times, dtype=np.float64)
        self._vecs = np.concatenate([self._vecs, np.asarray(vecs, dtype=np.float32).reshape(len(ids), self.dim)])
        self._ids = np.concatenate([self._ids, ids])
        self._alive = np.concatenate([self._alive, np.ones(len(ids), dtype=bool)])
        self._times = np.concatenate([self._times, when])
        self._scopes += [dict(s) for s in scopes_]
        self._row.update((int(i), self.n + j) for j, i in enumerate(ids))
        self.n += len(ids)

    def remove(self, ids: list[int]) -> None:
        for i in ids:
            row = self._row.pop(int(i), None)
            if row is not None:
                self._alive[row] = False

    def mask(self, scope: dict[str, str], allowed: np.ndarray | None = None, since: float | None = None,
             until: float | None = None) -> np.ndarray | None:
        m = self._alive & np.array([scopes.contains(scope, s) for s in self._scopes], dtype=bool).reshape(self.n)
        if allowed is not None:
            m &= np.isin(self._ids, allowed)
        if since is not None:
            m &= self._times >= since
        if until is not None:
            m &= self._times <= until
        return None if m.all() else m

    def _rows(self, mask: np.ndarray | None) -> np.ndarray:
        return np.flatnonzero(self._alive if mask is None else mask[: self.n] & self._alive)

    def search(self, query: np.ndarray, k: int, mask: np.ndarray | None = None) -> list[tuple[int, float]]:
        return self.search_batch(np.asarray(query).reshape(1, self.dim), k, mask)[0]

    def search_batch(self, queries: np.ndarray, k: int, mask: np.ndarray | None = None,
                     ef_search: int | None = None) -> list[list[tuple[int, float]]]:
        rows = self._rows(mask)
        out = []
        for q in np.asarray(queries, dtype=np.float32).reshape(-1, self.dim):
            scores = self._vecs[rows] @ q
            order = np.argsort(-scores, kind="stable")[: max(k, 0)]
            out.append([(int(self._ids[rows[j]]), float(scores[j])) for j in order])
        return out

    def sample_scores(self, query: np.ndarray, mask: np.ndarray | None = None, n: int = 2048,
                      key: Any = None) -> np.ndarray:
        rows = self._rows(mask)
        if len(rows) > n:
            rows = rows[:: len(rows) // n][:n]
        return self._vecs[rows] @ np.asarray(query, dtype=np.float32)

    def search_and_sample(self, query: np.ndarray, k: int, mask: np.ndarray | None = None, n: int = 2048,
                          key: Any = None) -> tuple[list[tuple[int, float]], np.ndarray]:
        return self.search(query, k, mask), self.sample_scores(query, mask, n, key)

    def time_of(self, item_id: int) -> float:
        return float(self._times[self._row[int(item_id)]])

    def set_times(self, ids: np.ndarray, times: np.ndarray) -> None:
        for i, t in zip(ids.tolist(), np.asarray(times, dtype=np.float64).tolist(), strict=True):
            if i in self._row:
                self._times[self._row[i]] = t

    def unknown_times(self) -> np.ndarray:
        return self._ids[self._alive & np.isnan(self._times)]

    def wait(self) -> None:
        pass

    def save(self, path: Path, background: bool = False) -> int:
        tmp = path.with_name(path.name + ".tmp.npz")
        keep = self._alive
        np.savez(tmp, mark=np.array(MARK), vecs=self._vecs[keep], ids=self._ids[keep], times=self._times[keep],
                 scopes=np.array([["" if v is None else v for v in scopes.key(s)]
                                  for s, k in zip(self._scopes, keep, strict=True) if k], dtype=str
                                 ).reshape(-1, len(scopes.KEYS)),
                 none=np.array([[v is None for v in scopes.key(s)] for s, k in zip(self._scopes, keep, strict=True)
                                if k], dtype=bool).reshape(-1, len(scopes.KEYS)))
        os.replace(tmp, path)
        return self.n

    def wait_saved(self) -> None:
        pass

    def close(self) -> None:
        pass

    @classmethod
    def load(cls, path: Path, dim: int, **options: Any) -> NumpyStore:
        try:
            with np.load(path, allow_pickle=False) as z:
                if "mark" not in z.files or str(z["mark"]) != MARK:
                    raise ValueError(f"{path.name} was not written by the numpy store")
                store = cls(dim, **options)
                values, none = z["scopes"], z["none"]
                store.add(z["ids"], z["vecs"], [scopes.from_columns([None if gone else str(v) for v, gone
                                                                   in zip(row, absent, strict=True)])
                                                for row, absent in zip(values, none, strict=True)],
                          times=z["times"])
        except (OSError, KeyError, EOFError) as exc:
            raise ValueError(str(exc)) from exc
        if store._vecs.shape[1] != dim:
            raise ValueError(f"{path.name} holds {store._vecs.shape[1]}-dim vectors, not {dim}")
        return store


@hookimpl
def register_stores(register: Any) -> None:
    register("numpy", NumpyStore, kind="vector")
