"""Prometheus metrics of ``agentmem serve`` (text format 0.0.4), kept by hand: requests by route,
method and status, a latency histogram per route, and the memory's sizes at scrape time."""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)  # seconds


class Metrics:
    """Counts and latency histograms, updated by the app's middleware from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self._buckets: dict[str, list[int]] = {}
        self._sum: dict[str, float] = defaultdict(float)
        self._count: dict[str, int] = defaultdict(int)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(route, method, status)] += 1
            counts = self._buckets.setdefault(route, [0] * (len(BUCKETS) + 1))
            counts[bisect.bisect_left(BUCKETS, seconds)] += 1
            self._sum[route] += seconds
            self._count[route] += 1

    def render(self, sizes: dict[str, int]) -> str:
        """The exposition text, with ``sizes`` (memory counts) as gauges."""
        out = ["# HELP agentmem_requests_total HTTP requests served, by route template, method and status.",
               "# TYPE agentmem_requests_total counter"]
        with self._lock:
            for (route, method, status), n in sorted(self._requests.items()):
                out.append(f'agentmem_requests_total{{route="{route}",method="{method}",status="{status}"}} {n}')
            out += ["# HELP agentmem_request_seconds Time from request to response, by route template.",
                    "# TYPE agentmem_request_seconds histogram"]
            for route, counts in sorted(self._buckets.items()):
                running = 0
                for bound, n in zip((*BUCKETS, float("inf")), counts, strict=True):
                    running += n
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    out.append(f'agentmem_request_seconds_bucket{{route="{route}",le="{le}"}} {running}')
                out.append(f'agentmem_request_seconds_sum{{route="{route}"}} {self._sum[route]:.6f}')
                out.append(f'agentmem_request_seconds_count{{route="{route}"}} {self._count[route]}')
        out += ["# HELP agentmem_memory_size Items and other records held by the memory, by kind.",
                "# TYPE agentmem_memory_size gauge"]
        out += [f'agentmem_memory_size{{kind="{kind}"}} {n}' for kind, n in sorted(sizes.items())]
        return "\n".join(out) + "\n"
