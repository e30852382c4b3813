"""The command line, in-process (CliRunner) and as `python -m agentmem`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
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


def _one_error_line(code: int, out: str, *needles: str) -> None:
    assert code == 1, out
    assert out.startswith("error: ") and out.count("\n") == 1 and "Traceback" not in out, out
    for needle in needles:
        assert needle in out, out


def test_remember_file_that_is_not_utf8_is_one_error_line(tmp_path: Path) -> None:
    f = tmp_path / "latin1.txt"
    f.write_bytes("café au lait\n".encode("latin-1"))
    code, out = run("remember", "--path", str(tmp_path / "m"), "--file", str(f))
    _one_error_line(code, out, "latin1.txt", "UTF-8", "iconv")
    assert not (tmp_path / "m").exists()  # checked before the memory is opened


def test_a_lock_file_that_cannot_be_created_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "m" / "LOCK").mkdir(parents=True)  # fails for root too, unlike a chmod
    code, out = run("remember", "--path", str(tmp_path / "m"), "hello")
    _one_error_line(code, out, "LOCK", "plain file")


def test_an_empty_path_is_refused_and_nothing_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for args in (["remember", "--path", "", "hello"], ["stats", "--path", ""], ["doctor", "--path", ""],
                 ["demo", "--path", ""],
                 ["run", "classification", "--model", "cnn", "--dataset", "digits", "--quick", "--path", ""]):
        code, out = run_all(*args)
        _one_error_line(code, out, "path is empty")
    assert list(tmp_path.iterdir()) == []


def test_forget_checks_every_id_before_forgetting_any(tmp_path: Path) -> None:
    p = str(tmp_path / "m")
    code, out = run("remember", "--path", p, "--json", "Ana adopted a cat", "Tomas moved to Porto")
    ids = json.loads(out)["ids"]
    code, out = run("forget", "--path", p, str(ids[0]), "999", "998")
    _one_error_line(code, out, "998, 999", "nothing was forgotten")
    code, out = run("stats", "--path", p, "--json")
    assert json.loads(out)["items"] == 2
    code, out = run("forget", "--path", p, "--json", *map(str, ids))
    assert code == 0 and json.loads(out) == {"forgotten": ids}


def test_stats_says_the_mode_in_words(tmp_path: Path) -> None:
    p = str(tmp_path / "m")
    run("remember", "--path", p, "hello")
    code, out = run("stats", "--path", p)
    assert code == 0 and "read_only" not in out and "True" not in out
    assert "mode               read-only" in out.splitlines()


def test_a_locked_memory_gets_a_command_line_hint(tmp_path: Path) -> None:
    import agentmem

    p = str(tmp_path / "m")
    with agentmem.Memory(p, embedder="hash"):
        code, out = run("remember", "--path", p, "hello")
    _one_error_line(code, out, "open for writing", "--path", "stop")
    assert "read_only=True" not in out and "lock_timeout" not in out


def test_doctor_and_plugins_take_path(tmp_path: Path) -> None:
    p = str(tmp_path / "m")
    run("remember", "--path", p, "hello")
    code, out = run_all("doctor", "--path", p, "--json")
    assert code == 0 and json.loads(out)["path"] == p
    code, out = run_all("doctor", p, "--json")  # the argument still works
    assert code == 0 and json.loads(out)["ok"] is True
    code, out = run_all("doctor", p, "--path", str(tmp_path / "other"))
    _one_error_line(code, out, "either")
    code, out = run("plugins", "--path", p, "--json")
    assert code == 0 and json.loads(out)["path"] == p


def run_all(*args: str) -> tuple[int, str]:
    """``run`` with the commands plugins add (run, doctor, bench) registered."""
    from agentmem.cli import _load_plugin_commands

    _load_plugin_commands()
    return run(*args)
