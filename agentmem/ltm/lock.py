"""The single-writer lock of a memory directory (an ``flock`` on ``<memdir>/LOCK``).

The kernel drops the lock when the holder dies, so a crashed writer never blocks the next one.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from agentmem.errors import MemoryLockedError


class WriterLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, timeout: float) -> None:
        """Take the lock, waiting at most ``timeout`` seconds; raise MemoryLockedError otherwise."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
                    os.close(fd)
                    raise MemoryLockedError(
                        f"{self.path.parent} is open for writing by {holder}; close it there, open this "
                        "one with read_only=True, or raise lock_timeout") from None
                time.sleep(0.02)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
