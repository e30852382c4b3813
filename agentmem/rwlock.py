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

``shared()`` and ``exclusive()`` return context managers made once per lock (a recall takes several
shared holds; a generator-based context manager cost three times as much per hold).
"""

from __future__ import annotations

import threading
from types import TracebackType


class _Hold:
    """The context manager of one side of a :class:`SharedLock`."""

    __slots__ = ("_enter", "_exit")

    def __init__(self, enter: object, exit_: object) -> None:
        self._enter, self._exit = enter, exit_

    def __enter__(self) -> None:
        self._enter()  # type: ignore[operator]

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._exit()  # type: ignore[operator]


class SharedLock:
    """Re-entrant, writer-preferring readers-writer lock (see the module docstring)."""

    def __init__(self, upgrade: str = "this thread holds the lock shared and cannot take it alone") -> None:
        self._upgrade = upgrade
        self._mutex = threading.Lock()  # entered directly: a Condition's own __enter__ is a Python call
        self._cond = threading.Condition(self._mutex)
        self._readers: dict[int, int] = {}  # thread id -> depth of its shared holds
        self._writer: int | None = None  # the thread holding exclusive()
        self._depth = 0  # its depth
        self._waiting = 0  # writers waiting: new readers hold back for them
        self._shared = _Hold(self.acquire_shared, self.release_shared)
        self._exclusive = _Hold(self.acquire_exclusive, self.release_exclusive)

    def shared(self) -> _Hold:
        """Hold the lock for reading for the block's duration."""
        return self._shared

    def exclusive(self) -> _Hold:
        """Hold the lock alone for the block's duration."""
        return self._exclusive

    def acquire_shared(self) -> None:
        me = threading.get_ident()
        with self._mutex:
            depth = self._readers.get(me)
            if depth is None and self._writer != me:
                while self._writer is not None or self._waiting:
                    self._cond.wait()
            self._readers[me] = (depth or 0) + 1

    def release_shared(self) -> None:
        me = threading.get_ident()
        with self._mutex:
            left = self._readers[me] - 1
            if left:
                self._readers[me] = left
            else:
                del self._readers[me]
                if not self._readers:
                    self._cond.notify_all()

    def acquire_exclusive(self) -> None:
        me = threading.get_ident()
        with self._mutex:
            if self._writer == me:
                self._depth += 1
                return
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

    def release_exclusive(self) -> None:
        with self._mutex:
            self._depth -= 1
            if not self._depth:
                self._writer = None
                self._cond.notify_all()

    def held(self) -> bool:
        """Whether the calling thread holds the lock (either way)."""
        me = threading.get_ident()
        return self._writer == me or me in self._readers
