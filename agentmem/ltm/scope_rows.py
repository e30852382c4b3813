"""Per-scope aids of the vector cache: the rows of each small scope, and the score sample of large ones.

Both exist because a scoped recall must not cost in proportion to the whole memory: comparing every
row's scope code cost ~1 ms per mask at 1M rows however small the scope, and gathering a 2,048-row
sample from a large scope was a sixth of its recall (docs/benchmarks.md).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np

from agentmem.scope import KEYS as SCOPE_KEYS

SCOPE_SAMPLES = 8  # large scopes whose sample spread is kept (3 MB each at 2,048 rows of 384 floats)
SCOPE_ROWS_MIN = 50_000  # from this many rows, a small scope's mask is built from its rows
_NO_ROWS = np.zeros(0, dtype=np.int64)


class ScopeRows:
    """Rows grouped by scope code, per scope key, for the scopes holding under 1/32 of the rows.

    Groups are filled lazily: the rows added since the last look-up are grouped on the next one; a
    value that outgrows 1/32 of the rows (and the absent key, code 0) is dropped and never tracked
    again, so it costs no copy as it grows. :meth:`reset` forgets everything (rows renumbered)."""

    def __init__(self) -> None:
        self._groups: list[dict[int, np.ndarray | None]] = [{} for _ in SCOPE_KEYS]
        self._built = 0  # rows [0, _built) are grouped
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._groups, self._built = [{} for _ in SCOPE_KEYS], 0

    def smallest(self, codes: np.ndarray, n: int, wanted: list[tuple[int, int]]) -> np.ndarray | None:
        """The rows (live or not, ascending) holding the rarest of ``wanted`` (key index, code) among
        rows [0, n) whose codes are ``codes``, when those are under 1/32 of the rows; else None."""
        if not wanted or n < SCOPE_ROWS_MIN:
            return None
        with self._lock:
            built, limit = self._built, n // 32
            if built < n:  # group the rows added since by their codes, once per key
                new = codes[built:n]
                for i in range(len(SCOPE_KEYS)):
                    order = np.argsort(new[:, i], kind="stable")
                    values, starts = np.unique(new[order, i], return_index=True)
                    table = self._groups[i]
                    for value, part in zip(values.tolist(), np.split(order + built, starts[1:]), strict=True):
                        have = table.get(value, _NO_ROWS)
                        table[value] = None if value == 0 or have is None or len(have) + len(part) > limit \
                            else np.concatenate([have, part]) if len(have) else part
                self._built = n
            best: np.ndarray | None = None
            for i, code in wanted:
                rows = self._groups[i].get(code, _NO_ROWS)
                if rows is not None and (best is None or len(rows) < len(best)):
                    best = rows
        return best if best is not None and len(best) <= limit else None


class ScopeSamples:
    """The kept score sample (a contiguous copy of an even spread of rows) of up to ``SCOPE_SAMPLES``
    large scopes, reused while the cache has lost no row, kept its numbering, and grown under 1%."""

    def __init__(self) -> None:
        # scope key -> (dead, generation, n then, spread), last used last
        self._kept: OrderedDict[Hashable, tuple[int, int, int, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()

    def get(self, key: Hashable, dead: int, generation: int, n: int) -> np.ndarray | None:
        """The spread kept for ``key``, if it is still the scope's."""
        with self._lock:
            hit = self._kept.get(key)
            if hit is None or hit[:2] != (dead, generation) or not hit[2] <= n <= 1.01 * hit[2] + 16:
                return None
            self._kept.move_to_end(key)
            return hit[3]

    def keep(self, key: Hashable, dead: int, generation: int, n: int, gather: Callable[[], np.ndarray]) -> np.ndarray:
        """Keep the spread ``gather`` returns for ``key`` (evicting the least recently used)."""
        spread = np.ascontiguousarray(gather())
        with self._lock:
            self._kept[key] = (dead, generation, n, spread)
            self._kept.move_to_end(key)
            while len(self._kept) > SCOPE_SAMPLES:
                self._kept.popitem(last=False)
        return spread
