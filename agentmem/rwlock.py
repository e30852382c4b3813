"""A readers-writer lock: many threads read at once, a writer alone.

Why: recalls only read the stores, and their heavy parts (FAISS, SQLite, numpy) release the GIL, so
a server's worker threads can recall in parallel; a write (remember, consolidate, forget) changes
what they read and runs alone.

Contract:

- ``shared()`` blocks while a writer holds the lock or waits for it (writers are preferred: a stream
  of recalls never starves a remember); ``exclusive()`` blocks while anyone else holds it.
- Both are re-entrant per thread: a thread holding either may take ``shared()`` again (a plugin
  hook inside a write may recall), and the writer may take ``exclusive()`` again.
- A thread holding only ``shared()`` that asks for ``exclusive()`` would wait for itself; it gets a
  ``RuntimeError`` with the lock's ``upgrade`` message (which names the fix) instead of a deadlock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class SharedLock:
    """Re-entrant, writer-preferring readers-writer lock (see the module docstring)."""

    def __init__(self, upgrade: str = "this thread holds the lock shared and cannot take it alone") -> None:
        self._upgrade = upgrade
        self._cond = threading.Condition(threading.Lock())
        self._readers: dict[int, int] = {}  # thread id -> depth of its shared holds
        self._writer: int | None = None  # the thread holding exclusive()
        self._depth = 0  # its depth
        self._waiting = 0  # writers waiting: new readers hold back for them

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the lock for reading for the block's duration."""
        me = threading.get_ident()
        with self._cond:
            if self._writer != me and me not in self._readers:
                while self._writer is not None or self._waiting:
                    self._cond.wait()
            self._readers[me] = self._readers.get(me, 0) + 1
        try:
            yield
        finally:
            with self._cond:
                left = self._readers[me] - 1
                if left:
                    self._readers[me] = left
                else:
                    del self._readers[me]
                    if not self._readers:
                        self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the lock alone for the block's duration."""
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                self._depth += 1
            else:
                if me in self._readers:
                    raise RuntimeError(self._upgrade)
                self._waiting += 1
                try:
                    while self._writer is not None or self._readers:
                        self._cond.wait()
                finally:
                    self._waiting -= 1
                    if self._writer is not None or self._readers:  # interrupted: readers held back go on
                        self._cond.notify_all()
                self._writer, self._depth = me, 1
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if not self._depth:
                    self._writer = None
                    self._cond.notify_all()

    def held(self) -> bool:
        """Whether the calling thread holds the lock (either way)."""
        me = threading.get_ident()
        return self._writer == me or me in self._readers
