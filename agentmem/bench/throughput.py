"""``agentmem bench throughput``: agentmem against the physical limits (embedder, raw FAISS) and
peer stores, on the same texts and the same precomputed embeddings, in one run; and the tenants
workload (:mod:`agentmem.bench.tenants`): the same items spread over users, every query scoped.

Each system runs in its own process (agentmem.bench.systems) so its peak memory is its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import click
import numpy as np

from agentmem.bench import bench, tenants
from agentmem.bench.corpus import CACHE, base_texts, embed_cached, exact_top, expand, queries

PEER_MODULES = {"chroma": "chromadb", "langchain": "langchain_community", "mem0": "mem0"}


def prepare(workdir: Path, n: int, base: int, n_queries: int) -> dict[str, Any]:
    """Write the corpus of size ``n`` and its queries and exact answers into ``workdir``."""
    from agentmem.plugins import get_embedder

    texts, source = base_texts(min(n, base))
    distinct = len(texts)
    vecs = embed_cached(texts, get_embedder("minilm"), CACHE)
    texts, vecs = expand(texts, vecs, n)
    qidx, qv = queries(vecs, n_queries)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "texts.json").write_text(json.dumps(texts))
    np.save(workdir / "vecs.npy", vecs)
    np.save(workdir / "qidx.npy", qidx)
    np.save(workdir / "qvecs.npy", qv)
    np.save(workdir / "truth.npy", exact_top(vecs, qv, 10))
    return {"source": source, "distinct_texts": distinct}


def run_system(system: str, workdir: Path, timeout: float) -> dict[str, Any]:
    """Run one system in a child process; its figures, or an error note."""
    try:
        proc = subprocess.run([sys.executable, "-m", "agentmem.bench.systems", system, str(workdir)],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f}s"}
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}: {tail[:300]}"}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


COLUMNS = [("ingest_per_s", "ingest/s", "{:,.0f}"), ("ingest_e2e_per_s", "e2e/s", "{:,.0f}"),
           ("remember_per_s", "one/s", "{:,.0f}"), ("recall_p50_ms", "p50 ms", "{:.2f}"),
           ("recall_p95_ms", "p95 ms", "{:.2f}"), ("recall_at_10", "R@10", "{:.3f}"),
           ("disk_bytes_per_item", "disk B/item", "{:,.0f}"), ("peak_rss_mb", "RSS MB", "{:,.0f}"),
           ("open_s", "open s", "{:.2f}")]


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def table(result: dict[str, Any]) -> str:
    emb = result["embedder"]
    lines = [f"embedder alone (MiniLM): batch 1 {emb.get('batch1_per_s', 0):,.0f}/s, "
             f"batch 32 {emb.get('batch32_per_s', 0):,.0f}/s"]
    for n, systems in result["sizes"].items():
        lines.append(f"\nN = {int(n):,}")
        lines.append(f"{'system':<12}" + "".join(f"{title:>13}" for _, title, _ in COLUMNS))
        scoped = {name.removesuffix("_tenants"): fig for name, fig in systems.items() if name.endswith("_tenants")}
        systems = {name: fig for name, fig in systems.items() if not name.endswith("_tenants")}
        for name, fig in systems.items():
            if "error" in fig:
                lines.append(f"{name:<12}  {fig['error']}")
                continue
            lines.append(f"{name:<12}" + "".join(f"{_cell(fig.get(key), fmt):>13}" for key, _, fmt in COLUMNS))
        lines += [f"  {r}" for r in ratios(emb, systems)]
        if scoped:
            lines += tenants.table(int(n), scoped)
    return "\n".join(lines)


def ratios(emb: dict[str, Any], systems: dict[str, Any]) -> list[str]:
    """The issue's acceptance ratios, computed from figures of this run."""
    a = systems.get("agentmem", {})
    out = []
    if "ingest_e2e_per_s" in a and emb.get("batch32_per_s"):
        out.append(f"remember_many e2e / embedder batch 32 = {a['ingest_e2e_per_s'] / emb['batch32_per_s']:.2f}")
    if "remember_per_s" in a and emb.get("batch1_per_s"):
        out.append(f"remember one-by-one / embedder batch 1 = {a['remember_per_s'] / emb['batch1_per_s']:.2f}")
    own = a.get("embedder_same_texts") or {}
    if "ingest_e2e_per_s" in a and own.get("batch32_per_s") and own.get("batch1_per_s"):
        out.append(f"  on the same texts, timed just before: e2e / batch 32 = "
                   f"{a['ingest_e2e_per_s'] / own['batch32_per_s']:.2f} ({own['batch32_per_s']:,.0f}/s), "
                   f"one-by-one / batch 1 = {a['remember_per_s'] / own['batch1_per_s']:.2f} "
                   f"({own['batch1_per_s']:,.0f}/s)")
    if "disk_ratio_to_payload" in a:
        out.append(f"disk / (embedding + text bytes) = {a['disk_ratio_to_payload']:.2f}")
    for peer in ("chroma", "langchain", "mem0", "faiss_exact", "faiss_ann"):
        p = systems.get(peer, {})
        if "ingest_per_s" in a and p.get("ingest_per_s"):
            line = f"vs {peer}: ingest x{a['ingest_per_s'] / p['ingest_per_s']:.2f}"
            if p.get("recall_p50_ms"):
                line += f", recall p50 x{a['recall_p50_ms'] / p['recall_p50_ms']:.2f} (lower is faster)"
            out.append(line)
    return out


@bench.command("throughput")
@click.option("--n", "sizes", default="10000,100000", show_default=True, help="comma-separated sizes")
@click.option("--peers", default="chroma,langchain,mem0", show_default=True,
              help="peer systems to compare (installed ones; '' for none)")
@click.option("--queries", "n_queries", default=200, show_default=True, help="single queries per size")
@click.option("--base", default=40_000, show_default=True,
              help="at most this many distinct texts are embedded with the real model (the corpus has ~37k)")
@click.option("--quick", is_flag=True, help="tiny sizes for the test suite (correctness, not speed)")
@click.option("--timeout", default=3600.0, show_default=True, help="seconds per system and size")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, help="write every figure here")
def throughput(sizes: str, peers: str, n_queries: int, base: int, quick: bool, timeout: float,
               json_out: str | None) -> None:
    """Ingest and recall throughput against the embedder, raw FAISS and peer stores."""
    ns = [300] if quick else [int(s) for s in sizes.split(",") if s.strip()]
    if quick:
        n_queries, base = min(n_queries, 30), min(base, 300)
    peer_list = [p.strip() for p in peers.split(",") if p.strip()]
    missing = [p for p in peer_list if p not in PEER_MODULES or find_spec(PEER_MODULES[p]) is None]
    result: dict[str, Any] = {"sizes": {}, "skipped_peers": missing, "started": time.time(),
                              "python": sys.version.split()[0]}
    systems = ["faiss_exact", "faiss_ann", "agentmem"] + [p for p in peer_list if p not in missing]
    systems += ["agentmem_tenants"] + (["chroma_tenants"] if "chroma" in systems else [])
    with tempfile.TemporaryDirectory(prefix="agentmem-bench-") as tmp:
        for n in ns:
            work = Path(tmp) / str(n)
            result["corpus"] = prepare(work, n, base, n_queries)
            if "embedder" not in result:
                result["embedder"] = run_system("embedder", work, timeout)
            figures: dict[str, Any] = {}
            for system in systems:
                click.echo(f"N={n:,}: {system} ...", err=True)
                figures[system] = run_system(system, work, timeout)
            result["sizes"][str(n)] = figures
            _rm(work)
    if missing:
        click.echo(f"peers not installed (pip install 'agentmem-toolkit[peers]'): {', '.join(missing)}", err=True)
    click.echo(table(result))
    if json_out:
        Path(json_out).write_text(json.dumps(result, indent=2))


def _rm(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
