"""``agentmem doctor PATH [--repair] [--json]``: check a memory directory, and rebuild what can be rebuilt.

Checking opens the memory read-only (no lock; safe beside a running writer) and reports on each
store: the journal (SQLite's integrity check, schema version), the full-text index, the vector
cache, the graph, the weight files (sha256 of every version), leftovers of interrupted writes, and
the write lock. ``--repair`` takes the write lock (bounded wait) and rebuilds from the journal: the
vector cache, the full-text index, facts or merge records that point at missing items, leftovers.
The journal itself and damaged weight files cannot be rebuilt; the report says what to do instead.

A vector cache behind the journal is not a problem: a live writer saves it on close (and every
``SAVE_EVERY`` new vectors), and a reader catches up in memory; without a live writer the next writer
(or ``--repair``) saves it. Either way it is reported as ``info`` and doctor exits 0, so a monitoring
job can run it beside live agents. Likewise a graph read while the writer adds facts.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click

from agentmem.errors import CorruptionError, InvalidInputError, MemoryPathError, SchemaError


@dataclass
class Check:
    """One finding. ``fixable``: ``--repair`` can rebuild it from the journal; ``info``: ok, but
    worth knowing (a cache behind the journal, rebuilt from it)."""

    name: str
    ok: bool
    detail: str
    fixable: bool = False
    repaired: bool = False
    info: bool = False


@dataclass
class Report:
    path: str
    checks: list[Check] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # what a repairing open said it did

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "ok": self.ok, "checks": [asdict(c) for c in self.checks],
                "notices": self.notices}


def diagnose(path: str | Path) -> Report:
    """Check every store of the memory at ``path`` without changing anything."""
    from agentmem.memory import Memory

    report = Report(str(path))
    try:
        mem = Memory(path, read_only=True)
    except MemoryPathError as exc:
        report.checks.append(Check("journal", False, str(exc)))
        return report
    except (SchemaError, CorruptionError) as exc:
        report.checks.append(Check("journal", False, str(exc)))
        _check_lock(Path(path), report)
        return report
    writer = _writer(Path(path))
    with mem:
        problems = mem.journal.integrity()
        _check_journal(mem, [p for p in problems if not p.startswith("full-text")], report)
        fts = [p for p in problems if p.startswith("full-text")]
        report.checks.append(Check("full-text index", not fts, "; ".join(fts) or "every item indexed once",
                                   fixable=bool(fts)))
        _check_vectors(mem, writer, report)
        _check_graph(mem, writer, report)
        _check_weights(mem, report)
        _check_leftovers(mem, report)
    _check_lock(Path(path), report)
    return report


def _check_journal(mem: Any, problems: list[str], report: Report) -> None:
    c = mem.journal.counts()
    version = mem.journal.conn.execute("PRAGMA user_version").fetchone()[0]
    backend = getattr(mem.embedder, "backend", "")  # what runs it in this process (AGENTMEM_EMBED_BACKEND)
    detail = (f"schema v{version}, {c['items']} items ({c['stm']} short-term, {c['ltm']} long-term), "
              f"{c['facts']} facts, {c['weight_versions']} weight versions, embedder {mem.embedder_name} "
              f"({mem.dim} dims{f', backend here: {backend}' if backend else ''})")
    if problems:
        detail = ("SQLite integrity check failed: " + "; ".join(problems[:5]) + ". The journal is the source "
                  "of truth and cannot be rebuilt: restore it from a backup, or try `sqlite3 journal.sqlite3 "
                  "'.recover'` into a new file")
    report.checks.append(Check("journal", not problems, detail))


def _check_vectors(mem: Any, writer: str | None, report: Report) -> None:
    # a read-only open loads the cache and catches it up in memory; what it had to do is the finding
    found = [n for n in mem.notices if n.startswith("vector cache")]
    if found:
        report.checks.append(Check("vector cache", False, "; ".join(found), fixable=True))
    elif mem.lag and writer:
        report.checks.append(Check("vector cache", True, f"{'; '.join(mem.lag)} (normal while {writer} writes: "
                                   "it saves the cache on close)", info=True))
    elif mem.lag:
        report.checks.append(Check("vector cache", True, f"{'; '.join(mem.lag)} (the last writer did not close; "
                                   "the next one catches it up, --repair saves it now)", fixable=True, info=True))
    else:
        report.checks.append(Check("vector cache", True, f"{len(mem.vector)} vectors, in step with the journal"))


def _check_graph(mem: Any, writer: str | None, report: Report) -> None:
    conn = mem.journal.conn
    facts = conn.execute("SELECT COUNT(*) FROM facts").fetchone()[0]
    dangling = conn.execute("SELECT COUNT(*) FROM facts WHERE item_id IS NOT NULL AND item_id NOT IN "
                            "(SELECT id FROM items)").fetchone()[0]
    orphans = conn.execute("SELECT COUNT(*) FROM merges WHERE canonical_id NOT IN (SELECT id FROM items)"
                           ).fetchone()[0]
    edges = mem.graph.stats()["facts"]
    problems = []
    if dangling:
        problems.append(f"{dangling} fact(s) point at items that no longer exist")
    if orphans:
        problems.append(f"{orphans} merge record(s) point at items that no longer exist")
    moved = edges != facts  # the graph is rebuilt on open: only a live writer changes facts since
    if moved and not writer:
        problems.append(f"the graph holds {edges} edges for {facts} journaled facts")
    detail = "; ".join(problems) or f"{facts} facts, {mem.graph.stats()['entities']} entities (rebuilt on open" + \
        (f"; {writer} has changed facts since)" if moved else ")")
    report.checks.append(Check("graph", not problems, detail, fixable=bool(dangling or orphans),
                               info=moved and not problems))


def _check_weights(mem: Any, report: Report) -> None:
    problems = mem.weights.verify()
    detail = ("; ".join(problems) + ". Damaged versions cannot be rebuilt: restore the files from a backup or "
              "`memory.weights.rollback(name, version)` to an intact one") if problems else \
        f"{mem.journal.counts()['weight_versions']} versions, every sha256 matches"
    report.checks.append(Check("weights", not problems, detail))


def _check_leftovers(mem: Any, report: Report) -> None:
    stray = mem.ltm.strays()
    names = ", ".join(str(p.relative_to(mem.path)) for p in stray)
    detail = f"left by interrupted writes (never acknowledged): {names}" if stray else "none"
    report.checks.append(Check("leftovers", not stray, detail, fixable=bool(stray)))


def _writer(path: Path) -> str | None:
    """Who holds the write lock ("pid 123"), None when no writer is open."""
    lock = path / "LOCK"
    if not lock.exists():
        return None
    fd = os.open(lock, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        except BlockingIOError:
            return os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
    finally:
        os.close(fd)


def _check_lock(path: Path, report: Report) -> None:
    holder = _writer(path)
    detail = f"held by {holder} (a writer is open; --repair waits for it)" if holder else "free"
    report.checks.append(Check("write lock", True, detail))


def repair(path: str | Path, lock_timeout: float = 10.0) -> Report:
    """Diagnose, rebuild every fixable store from the journal under the write lock, diagnose again.
    Raises MemoryLockedError when a writer keeps the lock past ``lock_timeout``."""
    from agentmem.memory import Memory

    before = diagnose(path)
    broken = {c.name for c in before.checks if not c.ok}
    todo = broken | {c.name for c in before.checks if c.fixable}  # a cache behind with no writer: saved
    if not todo or "journal" in broken:
        return before
    with Memory(path, lock_timeout=lock_timeout) as mem:  # opening sweeps leftovers, catches the cache up
        notices = list(mem.notices)
        if "full-text index" in broken:
            mem.journal.text.rebuild()
        if "graph" in broken:
            with mem.journal.tx() as c:
                c.execute("DELETE FROM facts WHERE item_id IS NOT NULL AND item_id NOT IN (SELECT id FROM items)")
                c.execute("DELETE FROM merges WHERE canonical_id NOT IN (SELECT id FROM items)")
            mem.graph.rebuild()
        mem.save_index()
    after = diagnose(path)
    after.notices = notices
    for check in after.checks:
        check.repaired = check.ok and check.name in todo
    return after


@click.command()
@click.argument("path_arg", metavar="[PATH]", required=False, type=click.Path(file_okay=False))
@click.option("--path", default=None, help="memory directory (default: $AGENTMEM_HOME or ~/.agentmem)")
@click.option("--repair", "fix", is_flag=True, help="rebuild what can be rebuilt from the journal")
@click.option("--lock-timeout", default=10.0, show_default=True, help="seconds to wait for a writer (--repair)")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def doctor(path_arg: str | None, path: str | None, fix: bool, lock_timeout: float, as_json: bool) -> None:
    """Check the memory directory PATH (or --path); exit status 1 when a problem remains."""
    from agentmem.config import memory_path

    if path_arg is not None and path is not None and path_arg != path:
        raise InvalidInputError("give the memory directory either as PATH or as --path, not both")
    where = memory_path(path if path is not None else path_arg)  # refuses an empty one
    logging.getLogger("agentmem").setLevel(logging.ERROR)  # what opening notices is in the report
    report = repair(where, lock_timeout) if fix else diagnose(where)  # errors: one line, exit 1 (cli.Group)
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        for notice in report.notices:
            click.echo(f"notice: {notice}")
        for c in report.checks:
            status = "fixed" if c.repaired else "FAIL" if not c.ok else "info" if c.info else "ok"
            hint = " (agentmem doctor --repair rebuilds it)" if not c.ok and c.fixable and not fix else ""
            click.echo(f"{status:<6} {c.name:<16} {c.detail}{hint}")
    sys.exit(0 if report.ok else 1)
