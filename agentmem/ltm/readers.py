"""Read connections to the journal, lent one per reading thread.

Why: one SQLite connection runs one statement at a time, so reads sharing the writer's connection
(and its lock) ran one after another; in WAL mode each connection reads its own snapshot while
another writes, and SQLite releases the GIL while it steps, so recalls on separate connections run
in parallel.

Contract: :meth:`ReadConnections.borrow` lends a connection for the block (a new one when all are
lent) and takes it back after; each statement on it sees every transaction committed before it
started (autocommit: no read transaction is held between statements). Connections of a writable
journal are ``query_only``. After :meth:`close`, borrowing raises ``MemoryClosedError`` and a
connection lent meanwhile is closed when it comes back.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agentmem.errors import MemoryClosedError

IDLE = 8  # connections kept for reuse; more are closed as they come back (each has its own page cache)


class ReadConnections:
    """A pool of read connections to the SQLite file at ``uri`` (see the module docstring)."""

    def __init__(self, uri: str, path: Path, read_only: bool) -> None:
        self._uri = uri
        self._path = path
        self._read_only = read_only
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._uri, uri=True, isolation_level=None, check_same_thread=False, timeout=10.0)
        if not self._read_only:
            conn.execute("PRAGMA query_only = ON")
        return conn

    @contextmanager
    def borrow(self) -> Iterator[sqlite3.Connection]:
        """A connection for the block's reads."""
        with self._lock:
            if self._closed:
                raise MemoryClosedError(f"the journal {self._path} is closed; open the memory again")
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._open()
        try:
            yield conn
        finally:
            with self._lock:
                keep = not self._closed and len(self._idle) < IDLE
                if keep:
                    self._idle.append(conn)
            if not keep:
                conn.close()

    def close(self) -> None:
        """Close the idle connections; lent ones are closed as they come back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
