"""Every code block of README.md and docs/*.md runs as written; the examples they point at run too.

The rule for what runs (each block in a fresh temporary working directory, ``AGENTMEM_HOME`` pointed
at a temporary memory directory, nothing downloaded):

- a ```python block runs as a script (``python block.py``) and must exit 0;
- in a ```sh, ```bash or ```console block (console: only the ``$ `` lines), each line is split into
  commands at ``;``, ``&&``, ``||`` and ``|`` (comments dropped), and every ``agentmem ...`` command
  runs in order, through the real command group (click's CliRunner, plugin commands loaded), and
  must exit 0 — except, by name, what cannot finish offline in seconds: ``agentmem bench ...`` and
  ``agentmem run ...`` without ``--quick`` (benchmarks and full training runs take minutes and read
  data sets that may be absent) and ``agentmem serve`` (it runs until stopped); the shell blocks of
  one file share one memory directory, in order;
- other commands (``make ...``, ``python ...``, ``pip ...``: environment set-up) and blocks in any
  other language or without one (layouts, command templates with placeholders, TOML) are not run.

Besides: README.md stays at most 250 lines (the rest belongs in docs/), every relative link of
README.md and docs/*.md reaches an existing file (and heading), every test the pages name exists,
``examples/quickstart.py`` runs, and the plugin template loads through its entry point.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```", re.S | re.M)
SHELLS = {"sh", "bash", "shell", "console"}
SEPARATORS = {";", "&&", "||", "|"}
TEMPLATE = ROOT / "examples" / "plugin_template"


def blocks(page: str, language: set[str]) -> list[tuple[int, str, str]]:
    """(line number, language, body) of every fenced block of ``page`` in ``language``."""
    text = (ROOT / page).read_text()
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
    if argv[1:2] == ["serve"]:
        return "a server: it runs until stopped (tests/test_serve.py runs it)"
    return None


PYTHON = [(page, *b) for page in PAGES for b in blocks(page, {"python"})]
SHELL_PAGES = [page for page in PAGES if blocks(page, SHELLS)]


@pytest.mark.parametrize("page,line,lang,body", PYTHON, ids=[f"{b[0]}:{b[1]}" for b in PYTHON])
def test_python_block_runs(tmp_path: Path, page: str, line: int, lang: str, body: str) -> None:
    (tmp_path / "cwd").mkdir()
    script = tmp_path / "cwd" / f"block_{line}.py"
    script.write_text(body)
    env = {**os.environ, "AGENTMEM_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, script.name], cwd=script.parent, env=env, capture_output=True,
                         text=True, timeout=240)
    assert res.returncode == 0, f"{page} line {line}:\n{res.stderr[-3000:]}"


@pytest.mark.parametrize("page", SHELL_PAGES)
def test_shell_blocks_agentmem_commands_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page: str) -> None:
    from agentmem.cli import _load_plugin_commands, cli

    _load_plugin_commands()
    monkeypatch.chdir(tmp_path)
    ran, skipped = [], []
    for line, lang, body in blocks(page, SHELLS):
        for argv in commands(lang, body):
            reason = skip_reason(argv)
            if reason is not None:
                skipped.append((argv, reason))
                continue
            res = CliRunner().invoke(cli, argv[1:], env={"AGENTMEM_HOME": str(tmp_path / "home")})
            assert res.exit_code == 0, f"{page} line {line}: {shlex.join(argv)}\n{res.output[-3000:]}"
            ran.append(argv[1])
    if page == "README.md":
        # the rule must leave the everyday commands in: the block under "Command line" runs them all
        assert {"remember", "recall", "forget", "consolidate", "stats", "plugins", "demo", "doctor"} <= set(ran)
    assert {reason for _, reason in skipped} <= {"environment set-up, not an agentmem command",
                                                 "a benchmark: minutes", "a full training run: minutes",
                                                 "a server: it runs until stopped (tests/test_serve.py runs it)"}


def test_the_rule_splits_and_skips_as_documented() -> None:
    assert commands("sh", 'agentmem forget 1; agentmem stats  # a comment\nmake demo') == [
        ["agentmem", "forget", "1"], ["agentmem", "stats"], ["make", "demo"]]
    assert commands("console", "$ agentmem recall 'a b' | head\nnot a command") == [
        ["agentmem", "recall", "a b"], ["head"]]
    assert skip_reason(["agentmem", "run", "classification", "--quick"]) is None
    assert skip_reason(["agentmem", "bench", "locomo"]) == "a benchmark: minutes"
    assert skip_reason(["make", "test"]) is not None
    assert "README.md" in PAGES and "docs/README.md" in PAGES and "docs/guarantees.md" in PAGES


def test_readme_stays_short() -> None:
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= 250, f"README.md has {lines} lines; move detail into docs/ (at most 250)"


# --- links and the tests the pages name --------------------------------------------------------

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*$", re.M)


def prose(text: str) -> str:
    """``text`` without fenced blocks and inline code, where brackets are code, not links."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", text))


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    out = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text())):
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


def relative_links(page: str) -> list[str]:
    return [t for t in LINK.findall(prose((ROOT / page).read_text()))
            if not re.match(r"[a-z][a-z0-9+.-]*:", t)]  # http:, https:, mailto: are not checked


def test_relative_links_reach_existing_files_and_headings() -> None:
    broken = []
    for page in PAGES:
        for target in relative_links(page):
            file, _, anchor = target.partition("#")
            path = (ROOT / page).parent / file if file else ROOT / page
            if not path.exists():
                broken.append(f"{page}: {target} (no such file)")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                broken.append(f"{page}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
    assert len(relative_links("README.md")) >= 6  # the README links its pages


def test_the_tests_the_pages_name_exist() -> None:
    """A guarantee is only as good as its test: every ``test_x.py::test_y`` and every backquoted
    ``test_y`` the pages name is a test function in tests/."""
    sources = {p.name: p.read_text() for p in (ROOT / "tests").glob("test_*.py")}
    missing = []
    for page in PAGES:
        text = (ROOT / page).read_text()
        for file, name in re.findall(r"(test_\w+\.py)::(test_\w+)", text):
            if not re.search(rf"^def {name}\(", sources.get(file, ""), re.M):
                missing.append(f"{page}: {file}::{name}")
        for file in re.findall(r"\b(test_\w+\.py)\b", text):
            if file not in sources:
                missing.append(f"{page}: {file}")
        for name in re.findall(r"`(test_\w+)`", text):
            if not any(re.search(rf"^def {name}\(", s, re.M) for s in sources.values()):
                missing.append(f"{page}: {name}")
    assert not missing, "\n".join(missing)


# --- examples ------------------------------------------------------------------------------------


def test_quickstart_runs(tmp_path: Path) -> None:
    env = {**os.environ, "AGENTMEM_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT),
           "AGENTMEM_LOAD_PLUGINS": ""}
    res = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout
    # the scoped recall finds Caroline's visit first and never u2's item; forget and reopen happened
    first_hit = out.split("recall in u1's scope:\n", 1)[1].splitlines()[0]
    assert "support group on 7 May 2023" in first_hit, out
    assert "Thursdays" not in out, out
    assert "reopened: 3 items" in out, out


def test_plugin_template_loads_through_its_entry_point(tmp_path: Path) -> None:
    """The template as pip would install it: its entry points written into a dist-info folder on the
    path, loaded by agentmem's own entry-point loading (not registered by hand), used by a Memory."""
    project = tomllib.loads((TEMPLATE / "pyproject.toml").read_text())["project"]
    groups = project["entry-points"]
    assert list(groups) == ["agentmem"], "agentmem loads the entry-point group `agentmem` only"
    ((entry, module),) = groups["agentmem"].items()
    site = tmp_path / "site"
    dist_info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    (dist_info / "entry_points.txt").write_text(f"[agentmem]\n{entry} = {module}\n")
    code = f"""
import agentmem
from agentmem import plugins

entry = plugins.get("embedders", "my-embedder")
assert entry.plugin == {entry!r}, entry
with agentmem.Memory({str(tmp_path / "m")!r}, embedder="my-embedder") as mem:
    assert mem.dim == 64
    cat = mem.remember("Ana adopted a cat named Pimenta", scope={{"user": "u1"}})
    mem.remember("The train to Porto leaves at nine", scope={{"user": "u1"}})
    mem.consolidate()
    hits = mem.recall("what is the name of the cat Ana adopted", k=2, scope={{"user": "u1"}})
    assert hits[0].id == cat, hits
    assert hits[0].cosine > hits[1].cosine, hits  # its vectors: the words shared with the query
print("ok")
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(TEMPLATE), str(ROOT)]),
           "AGENTMEM_LOAD_PLUGINS": entry}  # this plugin only, through agentmem's entry-point loading
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-3000:]
