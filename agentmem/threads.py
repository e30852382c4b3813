"""Native thread pools: keep BLAS from competing with agentmem's own worker threads."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.RLock()  # re-entrant: a plugin hook inside the block may consolidate another memory


@contextmanager
def single_blas_thread() -> Iterator[None]:
    """Run the block with BLAS (numpy's matrix products) on one thread, process-wide.

    OpenBLAS threads spin-wait between calls; next to a FAISS insertion thread on a 2-core machine
    they take CPU from it rather than finishing sooner. The limit is process-wide, so blocks are
    serialised: a second thread entering waits for the first to restore the previous setting. The
    loaded libraries are looked up each time (0.3 ms), since one may have been loaded since."""
    from threadpoolctl import ThreadpoolController

    with _LOCK, ThreadpoolController().limit(limits=1, user_api="blas"):
        yield


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextmanager
def faiss_threads(n: int) -> Iterator[None]:
    """Run the block's FAISS calls on ``n`` OpenMP threads (the count is a setting of each calling
    thread, so other threads keep theirs)."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


@contextmanager
def single_faiss_thread() -> Iterator[None]:
    """Run the block's FAISS calls on the calling thread only."""
    with faiss_threads(1):
        yield
