"""Timing loops shared by the benchmarks: the same collection before each loop, the same percentiles."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def settle() -> None:
    """Collect garbage before a timed loop, as timeit does: a full collection after a 10k-item ingest
    took ~80 ms and landed in whichever loop came next."""
    gc.collect()


def timed(fn: Callable[[int], Any], n: int) -> tuple[list[float], list[Any]]:
    """(seconds of each call, results) of ``fn(0) .. fn(n - 1)``, after a garbage collection."""
    settle()
    times, out = [], []
    for j in range(n):
        t = time.perf_counter()
        out.append(fn(j))
        times.append(time.perf_counter() - t)
    return times, out


def ms(times: list[float], q: float) -> float:
    """Percentile ``q`` of ``times`` (seconds), in milliseconds."""
    return float(np.percentile(times, q) * 1000)
