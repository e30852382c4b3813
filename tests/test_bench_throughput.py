"""`agentmem bench throughput --quick`: the figures are computed right (speed is not tested here)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from agentmem.bench.corpus import exact_top, expand, queries, recall_at


def test_corpus_helpers() -> None:
    rng = np.random.default_rng(3)
    vecs = rng.normal(size=(50, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    texts, big = expand([f"t{i}" for i in range(50)], vecs, 120)
    assert len(texts) == 120 and texts[49] == "t49" and texts[50] == "t0 (variant 1)"
    assert np.allclose(np.linalg.norm(big, axis=1), 1, atol=1e-5) and np.array_equal(big[:50], vecs)
    assert len({t for t in texts}) == 120
    _, q = queries(big, 10)
    truth = exact_top(big, q, 5)
    brute = np.argsort(-(q @ big.T), axis=1)[:, :5]
    assert np.array_equal(truth, brute)
    assert recall_at(truth.tolist(), truth, 5) == 1.0
    assert recall_at([row[:1] + [-1] * 4 for row in truth.tolist()], truth, 5) == pytest.approx(0.2)


def test_quick_run_writes_every_figure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agentmem.cli import _load_plugin_commands, cli

    _load_plugin_commands()
    monkeypatch.setenv("AGENTMEM_BENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "t.json"
    result = CliRunner().invoke(cli, ["bench", "throughput", "--quick", "--peers", "", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["embedder"]["batch1_per_s"] > 0 and data["embedder"]["batch32_per_s"] > 0
    sizes = data["sizes"]["300"]
    assert sizes["faiss_exact"]["recall_at_10"] == 1.0
    assert sizes["faiss_ann"]["recall_at_10"] >= 0.95
    a = sizes["agentmem"]
    for key in ("ingest_per_s", "ingest_e2e_per_s", "remember_per_s", "recall_p50_ms", "recall_p95_ms",
                "recall_at_10", "disk_bytes_per_item", "peak_rss_mb", "open_s"):
        assert isinstance(a[key], float) and a[key] > 0, key
    assert a["recall_p50_ms"] <= a["recall_p95_ms"]
    assert a["recall_at_10"] >= 0.9  # exact search; only merged duplicates can be missing
    assert "remember_many e2e / embedder batch 32" in result.output
