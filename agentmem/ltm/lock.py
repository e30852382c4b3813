"""The single-writer lock of a memory directory (an ``flock`` on ``<memdir>/LOCK``).

The kernel drops the lock when the holder dies, so a crashed writer never blocks the next one.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from agentmem.errors import MemoryLockedError, MemoryPathError


class WriterLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, timeout: float) -> None:
        """Take the lock, waiting at most ``timeout`` seconds; raise MemoryLockedError otherwise."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:  # a read-only directory, a LOCK that is a directory, ...
            raise MemoryPathError(
                f"cannot open the lock file {self.path} ({exc.strerror}); make {self.path.parent} writable "
                f"by this user and {self.path.name} a plain file, or use another memory directory") from exc
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
                    os.close(fd)
                    where = f"{self.path.parent} is open for writing by {holder}"
                    raise MemoryLockedError(
                        f"{where}; close it there, open this one with read_only=True, or raise lock_timeout",
                        cli_message=f"{where}; stop that process (or let it finish) and retry, use a "
                        "read-only command beside it (recall, stats, doctor), or use a different --path",
                    ) from None
                time.sleep(0.02)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
