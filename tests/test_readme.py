"""Every code block of README.md runs as written.

The rule for what runs (each block in a fresh temporary working directory, ``AGENTMEM_HOME`` pointed
at a temporary memory directory, nothing downloaded):

- a ```python block runs as a script (``python block.py``) and must exit 0;
- in a ```sh, ```bash or ```console block (console: only the ``$ `` lines), each line is split into
  commands at ``;``, ``&&``, ``||`` and ``|`` (comments dropped), and every ``agentmem ...`` command
  runs in order, through the real command group (click's CliRunner, plugin commands loaded), and
  must exit 0 — except, by name, what cannot finish offline in seconds: ``agentmem bench ...`` and
  ``agentmem run ...`` without ``--quick`` (benchmarks and full training runs take minutes and read
  data sets that may be absent);
- other commands (``make ...``, ``python ...``, ``pip ...``: environment set-up) and blocks without
  a language (layouts, command templates with placeholders) are not run.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```", re.S | re.M)
SHELLS = {"sh", "bash", "shell", "console"}
SEPARATORS = {";", "&&", "||", "|"}


def blocks(language: set[str]) -> list[tuple[int, str, str]]:
    """(line number, language, body) of every fenced block of README.md in ``language``."""
    text = (ROOT / "README.md").read_text()
    return [(text.count("\n", 0, m.start()) + 1, m.group(1), m.group(2)) for m in FENCE.finditer(text)
            if m.group(1) in language]


def commands(lang: str, body: str) -> list[list[str]]:
    """The commands of a shell block, each as argv."""
    out: list[list[str]] = []
    for line in body.splitlines():
        if lang == "console":
            if not line.startswith("$ "):
                continue  # output
            line = line[2:]
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        current: list[str] = []
        for token in [*lexer, ";"]:
            if token in SEPARATORS:
                if current:
                    out.append(current)
                current = []
            else:
                current.append(token)
    return out


def skip_reason(argv: list[str]) -> str | None:
    """Why a command of a shell block is not run (None: it runs)."""
    if argv[0] != "agentmem":
        return "environment set-up, not an agentmem command"
    if argv[1:2] == ["bench"] and "--quick" not in argv:
        return "a benchmark: minutes"
    if argv[1:2] == ["run"] and "--quick" not in argv:
        return "a full training run: minutes"
    return None


PYTHON = blocks({"python"})


@pytest.mark.parametrize("line,lang,body", PYTHON, ids=[f"README.md:{b[0]}" for b in PYTHON])
def test_python_block_runs(tmp_path: Path, line: int, lang: str, body: str) -> None:
    (tmp_path / "cwd").mkdir()
    script = tmp_path / "cwd" / f"readme_{line}.py"
    script.write_text(body)
    env = {**os.environ, "AGENTMEM_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, script.name], cwd=script.parent, env=env, capture_output=True,
                         text=True, timeout=240)
    assert res.returncode == 0, f"README.md line {line}:\n{res.stderr[-3000:]}"


def test_shell_blocks_agentmem_commands_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agentmem.cli import _load_plugin_commands, cli

    _load_plugin_commands()
    monkeypatch.chdir(tmp_path)
    ran, skipped = [], []
    for line, lang, body in blocks(SHELLS):
        for argv in commands(lang, body):
            reason = skip_reason(argv)
            if reason is not None:
                skipped.append((argv, reason))
                continue
            res = CliRunner().invoke(cli, argv[1:], env={"AGENTMEM_HOME": str(tmp_path / "home")})
            assert res.exit_code == 0, f"README.md line {line}: {shlex.join(argv)}\n{res.output[-3000:]}"
            ran.append(argv[1])
    # the rule must leave the everyday commands in: the block under "Command line" runs them all
    assert {"remember", "recall", "forget", "consolidate", "stats", "plugins", "demo", "doctor"} <= set(ran)
    assert {reason for _, reason in skipped} <= {"environment set-up, not an agentmem command",
                                                 "a benchmark: minutes", "a full training run: minutes"}


def test_the_rule_splits_and_skips_as_documented() -> None:
    assert commands("sh", 'agentmem forget 1; agentmem stats  # a comment\nmake demo') == [
        ["agentmem", "forget", "1"], ["agentmem", "stats"], ["make", "demo"]]
    assert commands("console", "$ agentmem recall 'a b' | head\nnot a command") == [
        ["agentmem", "recall", "a b"], ["head"]]
    assert skip_reason(["agentmem", "run", "classification", "--quick"]) is None
    assert skip_reason(["agentmem", "bench", "locomo"]) == "a benchmark: minutes"
    assert skip_reason(["make", "test"]) is not None
