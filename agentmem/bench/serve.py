"""``agentmem bench serve``: a live ``agentmem serve`` on loopback under 1, 8 and 32 concurrent clients.

Per size N (the throughput bench's corpus and vectors, spread round-robin over ``--users`` users) and
per number of clients, for ``--seconds`` each, every client a thread with its own HTTP connection:

- ``text``: scoped recalls of text queries (the server embeds them) with one remember in ten;
- ``vectors``: the same with the vectors given (store only), and the same workload against
  ``chroma run`` (chromadb's own HTTP server) with its ``where`` filter, when chromadb is installed.

Reported: p50 / p99 latency of each kind of request, requests per second, errors, and lost writes
(every acknowledged id, warm-up included, is read back after the run). Each row follows one
untimed second of the same workload (connections opened, the embedder and caches warm). The
clients run on the same two cores as the server, for every system alike.
"""

from __future__ import annotations

import itertools
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np

from agentmem.bench import bench
from agentmem.bench.corpus import fill_by_user, queries, sized


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes], seconds: float = 120) -> None:
    import httpx

    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise click.ClickException(f"the server exited with status {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise click.ClickException(f"no answer from {url} within {seconds:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def drive(clients: int, seconds: float, step: Callable[[int, int], tuple[str, list[int]]]) -> dict[str, Any]:
    """Run ``step(client, n)`` in ``clients`` threads for ``seconds``; ``step`` returns (the kind of
    request, the ids it stored). Latencies per kind, requests per second, errors, acknowledged ids."""
    lat: dict[str, list[float]] = {}
    acked: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def run(c: int) -> None:
        n = 0
        while time.perf_counter() < stop:
            t = time.perf_counter()
            try:
                kind, ids = step(c, n)
            except Exception as exc:  # every failure is counted and reported, the run goes on
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                n += 1
                continue
            dt = time.perf_counter() - t
            with lock:
                lat.setdefault(kind, []).append(dt)
                acked.extend(ids)
            n += 1

    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    start = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - start
    total = sum(len(v) for v in lat.values())
    return {"clients": clients, "seconds": wall, "requests_per_s": total / wall, "errors": len(errors),
            "error_samples": errors[:3], "acked": acked,
            **{f"{k}_p50_ms": float(np.percentile(v, 50) * 1000) for k, v in lat.items()},
            **{f"{k}_p99_ms": float(np.percentile(v, 99) * 1000) for k, v in lat.items()},
            **{f"{k}_n": len(v) for k, v in lat.items()}}


def run_agentmem(work: Path, texts: list[str], vecs: np.ndarray, qidx: np.ndarray, qv: np.ndarray, users: int,
                 levels: list[int], seconds: float) -> dict[str, Any]:
    import agentmem

    path = work / "agentmem"
    with agentmem.Memory(path) as mem:
        fill_by_user(mem, texts, vecs, users)
    port = _port()
    proc = subprocess.Popen([sys.executable, "-m", "agentmem", "serve", str(path), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    out: dict[str, Any] = {}
    try:
        _wait(url + "/healthz", proc)
        for given in (False, True):
            for clients in levels:
                pool = [agentmem.Client(url, timeout=60) for _ in range(clients)]

                def step(c: int, n: int, pool: list[Any] = pool, given: bool = given) -> tuple[str, list[int]]:
                    j = (c * 7919 + n) % len(qidx)
                    scope = {"user": f"u{int(qidx[j]) % users}"}
                    if n % 10 == 9:
                        return "remember", [pool[c].remember(f"new note {c}-{n}: {texts[int(qidx[j])]}", scope=scope,
                                                             embedding=qv[j] if given else None)]
                    pool[c].recall(texts[int(qidx[j])], k=10, scope=scope, embedding=qv[j] if given else None)
                    return "recall", []

                warm = drive(clients, 1.0, step)["acked"]  # connections, the embedder, caches: not timed
                figures = drive(clients, seconds, step)
                acked = figures.pop("acked") + warm
                missing = 0
                for i in acked:  # every acknowledged write is there
                    try:
                        pool[0].get(i)
                    except agentmem.errors.NotFoundError:
                        missing += 1
                figures["lost_writes"] = missing
                for cl in pool:
                    cl.close()
                out[f"{'vectors' if given else 'text'}/{clients}"] = figures
    finally:
        _stop(proc)
    return out


def run_chroma(work: Path, texts: list[str], vecs: np.ndarray, qidx: np.ndarray, qv: np.ndarray, users: int,
               levels: list[int], seconds: float) -> dict[str, Any]:
    import chromadb

    exe = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    port = _port()
    proc = subprocess.Popen([exe, "run", "--path", str(work / "chroma"), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out: dict[str, Any] = {}
    fresh = itertools.count(10_000_000)  # ids of new items: unique across rows and warm-ups
    try:
        _wait(f"http://127.0.0.1:{port}/api/v2/heartbeat", proc)
        client = chromadb.HttpClient(host="127.0.0.1", port=port)
        col = client.create_collection("bench", metadata={"hnsw:space": "ip"})
        for start in range(0, len(texts), 2000):
            end = min(len(texts), start + 2000)
            col.add(ids=[str(i) for i in range(start, end)], embeddings=vecs[start:end].tolist(),
                    documents=texts[start:end], metadatas=[{"user": f"u{i % users}"} for i in range(start, end)])
        for clients in levels:
            pool = [chromadb.HttpClient(host="127.0.0.1", port=port).get_collection("bench") for _ in range(clients)]

            def step(c: int, n: int, pool: list[Any] = pool) -> tuple[str, list[int]]:
                j = (c * 7919 + n) % len(qidx)
                where = {"user": f"u{int(qidx[j]) % users}"}
                if n % 10 == 9:
                    new = next(fresh)
                    pool[c].add(ids=[str(new)], embeddings=[qv[j].tolist()], documents=[f"new note {c}-{n}"],
                                metadatas=[where])
                    return "remember", [new]
                pool[c].query(query_embeddings=[qv[j].tolist()], n_results=10, where=where)
                return "recall", []

            warm = drive(clients, 1.0, step)["acked"]
            figures = drive(clients, seconds, step)
            acked = figures.pop("acked") + warm
            found = set(pool[0].get(ids=[str(i) for i in acked])["ids"]) if acked else set()
            figures["lost_writes"] = len(acked) - len(found)
            out[f"vectors/{clients}"] = figures
    finally:
        _stop(proc)
    return out


@bench.command("serve")
@click.option("--n", "sizes", default="10000,100000", show_default=True, help="comma-separated sizes")
@click.option("--clients", default="1,8,32", show_default=True, help="comma-separated numbers of clients")
@click.option("--seconds", default=20.0, show_default=True, help="seconds per number of clients")
@click.option("--users", default=100, show_default=True, help="users the items are spread over")
@click.option("--peers", default="chroma", show_default=True, help="'chroma' (when installed) or ''")
@click.option("--json", "json_out", default=None, help="write every figure here")
def serve_bench(sizes: str, clients: str, seconds: float, users: int, peers: str, json_out: str | None) -> None:
    """A live server under concurrent clients: scoped recalls mixed with remembers."""
    levels = [int(c) for c in clients.split(",") if c]
    report: dict[str, Any] = {"clients": levels, "seconds": seconds, "users": users, "sizes": {}}
    for n in [int(s) for s in sizes.split(",") if s]:
        texts, vecs = sized(n)
        qidx, qv = queries(vecs, 2000)
        with tempfile.TemporaryDirectory(prefix="agentmem-bench-serve-") as tmp:
            work = Path(tmp)
            click.echo(f"N={n:,}: agentmem ...", err=True)
            figures = {"agentmem": run_agentmem(work, texts, vecs, qidx, qv, users, levels, seconds)}
            if "chroma" in peers.split(","):
                try:
                    import chromadb  # noqa: F401
                except ImportError:
                    figures["chroma"] = {"error": "chromadb is not installed (pip install 'agentmem-toolkit[peers]')"}
                else:
                    click.echo(f"N={n:,}: chroma ...", err=True)
                    figures["chroma"] = run_chroma(work, texts, vecs, qidx, qv, users, levels, seconds)
        report["sizes"][str(n)] = figures
        click.echo(f"\nN = {n:,}, {users} users, {seconds:.0f} s per row (p50 / p99 ms)")
        click.echo(f"{'system':<10} {'workload':<9} {'clients':>7} {'req/s':>8} {'recall p50':>11} {'p99':>8} "
                   f"{'write p50':>10} {'p99':>8} {'errors':>7} {'lost':>5}")
        for system, rows in figures.items():
            if "error" in rows:
                click.echo(f"{system:<10} {rows['error']}")
                continue
            for name, f in rows.items():
                workload, c = name.split("/")
                click.echo(f"{system:<10} {workload:<9} {c:>7} {f['requests_per_s']:>8.1f} "
                           f"{f.get('recall_p50_ms', 0):>11.2f} {f.get('recall_p99_ms', 0):>8.2f} "
                           f"{f.get('remember_p50_ms', 0):>10.2f} {f.get('remember_p99_ms', 0):>8.2f} "
                           f"{f['errors']:>7} {f['lost_writes']:>5}")
    if json_out:
        Path(json_out).write_text(json.dumps(report, indent=2))
