"""When and where the journal's write-ahead log is copied into the database file.

SQLite's own policy (a checkpoint inside the commit that passes 4 MB of log) is switched off: bulk
loads rewrite the same full-text and index pages many times between checkpoints, and each checkpoint
syncs. Instead a thread of the journal's own checkpoints every ~40 MB of log, from a connection of its
own, and the writer steps in only when the log outgrows what the thread keeps up with.
"""

from __future__ import annotations

import atexit
import contextlib
import sqlite3
import threading
import weakref
from pathlib import Path

WAL_CHECKPOINT_BYTES = 40 << 20  # write-ahead log size that triggers a (background) checkpoint
WAL_FORCE_FACTOR = 4  # a log this many times larger is checkpointed by the writer itself
COMMITS_PER_CHECK = 4  # the log's size is looked at every this many commits


class Checkpointer:
    """Checkpoints the write-ahead log from a connection of its own on a daemon thread, when poked,
    so that a write never waits for the copy and sync (a PASSIVE checkpoint copies what is committed
    and takes no lock a writer needs; sqlite3 releases the GIL meanwhile). The last connection to
    close checkpoints whatever is left, as SQLite always does.

    The writer calls :meth:`committed` after each commit, holding its connection's lock."""

    def __init__(self, uri: str, wal: Path) -> None:
        self._uri = uri
        self._wal = wal
        self._wake = threading.Event()
        self._stop = False
        self._commits = 0
        self.runs = 0  # checkpoints this thread has completed
        self.running = threading.Lock()  # held while this thread checkpoints
        self._thread = threading.Thread(target=self._run, name="agentmem-checkpoint", daemon=True)
        self._thread.start()
        _CHECKPOINTERS.add(self)

    def committed(self, conn: sqlite3.Connection) -> None:
        """After a commit on the writer's ``conn``: past WAL_CHECKPOINT_BYTES of log, wake the thread;
        if the log still grew to WAL_FORCE_FACTOR times that (a writer that never pauses gives a
        concurrent checkpoint no moment to finish, and the log restarts only after one has),
        checkpoint on ``conn`` here, between transactions."""
        self._commits += 1
        if self._commits % COMMITS_PER_CHECK:
            return
        size = _size(self._wal)
        if size >= WAL_FORCE_FACTOR * WAL_CHECKPOINT_BYTES:
            # after the thread's checkpoint, if one is running: SQLite would answer busy at once, and
            # under CPU contention the thread's checkpoints (never complete while we write) kept the
            # writer's off for dozens of commits (a 1 MB limit let the log reach 19.6 MB)
            with self.running, contextlib.suppress(sqlite3.OperationalError):
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        elif size >= WAL_CHECKPOINT_BYTES:
            self._wake.set()

    def _run(self) -> None:
        conn = sqlite3.connect(self._uri, uri=True, isolation_level=None, check_same_thread=False, timeout=10.0)
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stop:
                    return
                if _size(self._wal) < WAL_CHECKPOINT_BYTES:
                    continue  # emptied since the poke (Journal.checkpoint): a checkpoint now would
                    # only make the next write restart the log, and sync its header
                try:
                    with self.running:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.runs += 1
                except sqlite3.Error:
                    pass  # busy or damaged: the next poke tries again, and the writer's close checkpoints
        finally:
            conn.close()

    def close(self) -> None:
        """Stop the thread, after a checkpoint it is running."""
        self._stop = True
        self._wake.set()
        self._thread.join()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


_CHECKPOINTERS: weakref.WeakSet[Checkpointer] = weakref.WeakSet()


@atexit.register
def _stop_checkpointers() -> None:
    """At interpreter exit, let a running checkpoint finish and stop the threads (a daemon thread
    inside SQLite while the process tears down is not safe)."""
    for checkpointer in list(_CHECKPOINTERS):
        checkpointer.close()
