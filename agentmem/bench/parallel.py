"""``agentmem bench parallel``: recalls from many threads of one process into one open ``Memory``.

What a server's worker threads do, without HTTP: per size N (the throughput bench's corpus and vectors,
spread round-robin over ``--users`` users) and per number of threads, for ``--seconds`` each, every
thread runs scoped recalls (vectors given, and text queries the memory embeds) with one remember in
``--write-every`` requests. Reported: requests per second, its ratio to one thread in the same run
(the baseline), and p50 / p99 of recalls and remembers. On two cores a ratio near 2 means concurrent
recalls do run in parallel: FAISS, SQLite, numpy and onnxruntime release the GIL for their work.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import click

from agentmem.bench import bench
from agentmem.bench.corpus import fill_by_user, queries, sized
from agentmem.bench.serve import drive


def run(path: Path, texts: list[str], vecs: Any, users: int, levels: list[int], seconds: float,
        write_every: int) -> dict[str, Any]:
    """Figures per workload and number of threads (a fresh memory at ``path``)."""
    import agentmem

    qidx, qv = queries(vecs, 2000)
    out: dict[str, Any] = {}
    with agentmem.Memory(path) as mem:
        fill_by_user(mem, texts, vecs, users)
        for given in (True, False):
            for threads in levels:
                def step(c: int, n: int, given: bool = given) -> tuple[str, list[int]]:
                    j = (c * 7919 + n) % len(qidx)
                    scope = {"user": f"u{int(qidx[j]) % users}"}
                    if write_every and n % write_every == write_every - 1:
                        return "remember", [mem.remember(f"new note {c}-{n}: {texts[int(qidx[j])]}", scope=scope,
                                                         embedding=qv[j] if given else None)]
                    mem.recall(texts[int(qidx[j])], k=10, scope=scope, embedding=qv[j] if given else None)
                    return "recall", []

                drive(threads, 1.0, step)  # caches and the embedder warm: not timed
                figures = drive(threads, seconds, step)
                acked = figures.pop("acked")
                figures["lost_writes"] = sum(1 for i in acked if not _found(mem, i))
                out[f"{'vectors' if given else 'text'}/{threads}"] = figures
    return out


def _found(mem: Any, item_id: int) -> bool:
    """Whether ``item_id`` is stored (merged into a near-duplicate counts: get() still answers)."""
    from agentmem.errors import NotFoundError

    try:
        mem.get(item_id)
    except NotFoundError:
        return False
    return True


@bench.command("parallel")
@click.option("--n", "sizes", default="10000,100000", show_default=True, help="comma-separated sizes")
@click.option("--threads", default="1,2,4,8", show_default=True, help="comma-separated numbers of threads")
@click.option("--seconds", default=10.0, show_default=True, help="seconds per number of threads")
@click.option("--users", default=100, show_default=True, help="users the items are spread over")
@click.option("--write-every", default=10, show_default=True, help="one remember in this many requests (0: none)")
@click.option("--json", "json_out", default=None, help="write every figure here")
def parallel_bench(sizes: str, threads: str, seconds: float, users: int, write_every: int,
                   json_out: str | None) -> None:
    """Concurrent scoped recalls (and remembers) from threads of one process, against one thread."""
    levels = sorted({1, *(int(t) for t in threads.split(",") if t)})
    report: dict[str, Any] = {"threads": levels, "seconds": seconds, "users": users, "sizes": {}}
    for n in [int(s) for s in sizes.split(",") if s]:
        texts, vecs = sized(n)
        with tempfile.TemporaryDirectory(prefix="agentmem-bench-parallel-") as tmp:
            click.echo(f"N={n:,} ...", err=True)
            figures = run(Path(tmp) / "mem", texts, vecs, users, levels, seconds, write_every)
        report["sizes"][str(n)] = figures
        writes = f"one remember in {write_every}" if write_every else "no remembers"
        click.echo(f"\nN = {n:,}, {users} users, {seconds:.0f} s per row, {writes} "
                   "(x: requests/s over one thread's, same run; p50 / p99 ms)")
        click.echo(f"{'workload':<9} {'threads':>7} {'req/s':>8} {'x':>6} {'recall p50':>11} {'p99':>8} "
                   f"{'write p50':>10} {'p99':>8} {'errors':>7} {'lost':>5}")
        for name, f in figures.items():
            workload, t = name.split("/")
            base = figures[f"{workload}/1"]["requests_per_s"]
            f["speedup"] = f["requests_per_s"] / base
            click.echo(f"{workload:<9} {t:>7} {f['requests_per_s']:>8.1f} {f['speedup']:>6.2f} "
                       f"{f.get('recall_p50_ms', 0):>11.2f} {f.get('recall_p99_ms', 0):>8.2f} "
                       f"{f.get('remember_p50_ms', 0):>10.2f} {f.get('remember_p99_ms', 0):>8.2f} "
                       f"{f['errors']:>7} {f['lost_writes']:>5}")
    if json_out:
        Path(json_out).write_text(json.dumps(report, indent=2))
