"""The command line, in-process (CliRunner) and as `python -m agentmem`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from agentmem.cli import cli


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_remember_recall_forget_stats(tmp_path: Path) -> None:
    p = str(tmp_path / "m")
    code, out = run("remember", "--path", p, "--user", "u1", "--metadata", '{"speaker": "Ana"}', "--json",
                    "Ana adopted a cat named Pimenta", "Tomas moved to Porto")
    assert code == 0
    ids = json.loads(out)["ids"]
    assert len(ids) == 2
    code, out = run("recall", "--path", p, "--user", "u1", "-k", "1", "--json", "What is the cat called?")
    hits = json.loads(out)
    assert code == 0 and hits[0]["id"] == ids[0] and hits[0]["metadata"] == {"speaker": "Ana"}
    code, out = run("recall", "--path", p, "--user", "u2", "--json", "cat")
    assert json.loads(out) == []
    code, out = run("consolidate", "--path", p, "--json")
    assert json.loads(out)["promoted"] == ids
    code, out = run("forget", "--path", p, "--json", str(ids[1]))
    assert json.loads(out) == {"forgotten": [ids[1]]}
    code, out = run("stats", "--path", p, "--json")
    stats = json.loads(out)
    assert stats["items"] == 1 and stats["ltm"] == 1 and stats["embedder"] == "minilm"
    code, out = run("recall", "--path", p, "--user", "u1", "cat")
    assert "Pimenta" in out


def test_errors_are_one_line_and_nonzero(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    code, out = run("remember", "--path", str(f), "hello")
    assert code == 1 and out.startswith("error: ") and "is a file" in out
    code, out = run("recall", "--path", str(tmp_path / "none"), "q")
    assert code == 1 and "holds no memory" in out
    code, out = run("remember", "--path", str(tmp_path / "m"), "--metadata", "{bad", "x")
    assert code == 1 and "--metadata is not valid JSON" in out
    code, out = run("forget", "--path", str(tmp_path / "m"), "99")
    assert code == 1 and "no item 99" in out


def test_python_dash_m_and_plugins(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "agentmem", "plugins", "--json"], capture_output=True,
                         text=True, check=True, timeout=120).stdout
    data = json.loads(out)
    assert data["embedders"]["minilm"] == "agentmem.default_plugins.embedders"
    assert data["stores"]["faiss"] == "agentmem.default_plugins.stores"


def test_demo_json(tmp_path: Path) -> None:
    code, out = run("demo", "--json", "--path", str(tmp_path / "demo"))
    assert code == 0
    result = json.loads(out)
    assert result["turns"] == 31 and result["reopened_same"] is True
    assert result["found_in_top3"] >= 5
    assert result["stats"]["ltm"] == 31 and result["stats"]["graph_facts"] > 0
