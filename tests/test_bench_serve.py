"""`agentmem bench serve` on a tiny corpus: a real server, concurrent clients, every write read back
(the figures' plumbing; speed is measured by the benchmark itself, never here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("httpx", reason="the server extra: pip install 'agentmem-toolkit[serve]'")
pytest.importorskip("fastapi", reason="the server extra: pip install 'agentmem-toolkit[serve]'")


def test_bench_serve_runs_both_workloads_and_loses_nothing(tmp_path: Path) -> None:
    from agentmem.bench import bench
    from agentmem.bench.serve import serve_bench  # noqa: F401  (registers the command)

    out = tmp_path / "serve.json"
    res = CliRunner().invoke(bench, ["serve", "--n", "300", "--clients", "1,3", "--seconds", "1", "--users", "3",
                                     "--peers", "", "--json", str(out)])
    assert res.exit_code == 0, res.output
    rows = json.loads(out.read_text())["sizes"]["300"]["agentmem"]
    assert set(rows) == {"text/1", "text/3", "vectors/1", "vectors/3"}
    for f in rows.values():
        assert f["errors"] == 0 and f["lost_writes"] == 0 and f["requests_per_s"] > 0
        assert f["recall_n"] > 0 and f["recall_p99_ms"] >= f["recall_p50_ms"] > 0
    assert "agentmem   vectors         3" in res.output
