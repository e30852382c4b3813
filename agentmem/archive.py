"""Moving a memory: ``agentmem export SRC OUT`` writes a versioned archive, ``agentmem import OUT DST``
makes a new memory of it, with the same ids and the same recall results.

Why an archive of our own: the journal is the source of truth, and an archive of its rows (not of
its SQLite file) can be read by any backend (the PostgreSQL one to come) and checked by a person.

Archive format 1, a directory:

- ``manifest.json``: ``{"format": "agentmem-archive", "version": 1, "created_at", "source": {"path",
  "schema", "embedder", "dim"}, "tables": {name: {"file", "columns", "rows", "sha256"}}, "weights":
  [{"file", "sha256", "size"}], "sequences": {table: the highest id it ever gave}}``;
- ``<table>.jsonl`` for every data table of the journal (:data:`TABLES`: meta, items, merges, facts,
  passages, weights, weight_heads, log, api_keys): one JSON array per row, in the manifest's column
  order (the journal's column names); a BLOB (an embedding: float32 little-endian; a content hash) is
  ``{"b64": "..."}``. API keys are their hashes only, as stored;
- ``weights/<name>/v<version>.safetensors``: the weight files, each checked against its sha256.

Derived data is not archived: full-text tables, the vector cache and the graph are rebuilt by the
importing memory from the rows. Export reads one SQLite snapshot (a read transaction), so it works
beside a running writer (a server); import writes into a new, empty directory only.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from agentmem.archive_format import FORMAT, TABLES, VERSION, decode, encode, sha256_of
from agentmem.errors import CorruptionError, InvalidInputError, MemoryPathError, SchemaError

JOURNAL_FILE = "journal.sqlite3"


def is_postgres(where: str | Path) -> bool:
    """Whether ``where`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    return isinstance(where, str) and where.lower().startswith(("postgresql://", "postgres://"))


def export_memory(src: str | Path, out: str | Path) -> dict[str, Any]:
    """Write the archive of the memory at ``src`` (a directory, or a PostgreSQL URL) into the new
    directory ``out``; its manifest."""
    if Path(out).exists() and any(Path(out).iterdir()):
        raise MemoryPathError(f"{out} exists and is not empty; export into a new directory")
    if is_postgres(src):
        from agentmem.pg.archive import export_pg

        return export_pg(str(src), Path(out))
    src, out = Path(src), Path(out)
    journal = src / JOURNAL_FILE
    if not journal.exists():
        raise MemoryPathError(f"{src} holds no memory to export")
    if out.exists() and any(out.iterdir()):
        raise MemoryPathError(f"{out} exists and is not empty; export into a new directory")
    out.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(f"file:{quote(str(journal))}?mode=ro", uri=True, isolation_level=None)
    tables: dict[str, Any] = {}
    try:
        conn.execute("BEGIN")  # one snapshot of every table, beside a writer
        schema = int(conn.execute("PRAGMA user_version").fetchone()[0])
        present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table in TABLES:
            if table not in present:  # an older schema: no passages or keys yet
                continue
            cur = conn.execute(f"SELECT * FROM {table}")
            columns = [d[0] for d in cur.description]
            file = out / f"{table}.jsonl"
            rows = 0
            with file.open("w", encoding="utf-8") as fh:
                for row in cur:
                    fh.write(json.dumps([encode(v) for v in row], ensure_ascii=False) + "\n")
                    rows += 1
            tables[table] = {"file": file.name, "columns": columns, "rows": rows, "sha256": sha256_of(file)}
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        sequences = dict(conn.execute("SELECT name, seq FROM sqlite_sequence").fetchall())
        weight_rows = conn.execute("SELECT file, sha256, size FROM weights").fetchall() if "weights" in present else []
        conn.execute("COMMIT")
    finally:
        conn.close()
    weights = []
    for rel, sha, size in weight_rows:  # version files never change once written
        source = src / "weights" / rel
        if sha256_of(source) != sha:
            raise CorruptionError(f"weight file {source} does not match its sha256; run `agentmem doctor {src}`")
        target = out / "weights" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        weights.append({"file": f"weights/{rel}", "sha256": sha, "size": size})
    manifest = {"format": FORMAT, "version": VERSION, "created_at": time.time(),
                "source": {"path": str(src), "schema": schema, "embedder": meta.get("embedder"),
                           "dim": int(meta["dim"]) if "dim" in meta else None},
                "tables": tables, "sequences": sequences, "weights": weights}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def read_manifest(archive: str | Path) -> dict[str, Any]:
    """The manifest of ``archive``, after checking every file it names against its count and sha256."""
    archive = Path(archive)
    try:
        manifest = json.loads((archive / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"{archive} is not an agentmem archive (manifest.json: {exc})") from exc
    if manifest.get("format") != FORMAT:
        raise InvalidInputError(f"{archive} is not an agentmem archive (format {manifest.get('format')!r})")
    if manifest.get("version") != VERSION:
        raise SchemaError(f"{archive} is archive format {manifest.get('version')}; this agentmem reads format "
                          f"{VERSION}: upgrade agentmem to import it")
    for table, entry in manifest["tables"].items():
        file = archive / entry["file"]
        if table not in TABLES or not file.exists() or sha256_of(file) != entry["sha256"]:
            raise CorruptionError(f"archive file {file} is missing or does not match its sha256; export again")
    for w in manifest["weights"]:
        if sha256_of(archive / w["file"]) != w["sha256"]:
            raise CorruptionError(f"archive file {archive / w['file']} does not match its sha256; export again")
    return manifest


def import_memory(archive: str | Path, dst: str | Path) -> dict[str, int]:
    """Make the new memory ``dst`` (a directory, or an empty PostgreSQL database named by its URL) of
    ``archive`` (same ids, rows, weights and keys); rows per table."""
    from agentmem.memory import Memory

    manifest = read_manifest(archive)
    if is_postgres(dst):
        from agentmem.pg.archive import import_pg

        return import_pg(Path(archive), manifest, str(dst))
    archive, dst = Path(archive), Path(dst)
    if dst.exists() and any(dst.iterdir()):
        raise MemoryPathError(f"{dst} exists and is not empty; import into a new directory")
    embedder = manifest["source"]["embedder"]
    Memory(dst, embedder=embedder).close()  # the schema, as this agentmem writes it
    conn = sqlite3.connect(str(dst / JOURNAL_FILE), isolation_level=None)
    counts: dict[str, int] = {}
    try:
        conn.execute("PRAGMA foreign_keys = OFF")  # rows arrive table by table; the archive is consistent
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM meta")
        for table in TABLES:
            entry = manifest["tables"].get(table)
            if entry is None:
                continue
            known = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
            unknown = [c for c in entry["columns"] if c not in known]
            if unknown:
                raise SchemaError(f"archive table {table} has columns {unknown} this agentmem does not know; upgrade")
            cols = entry["columns"]
            sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
            n = 0
            with (archive / entry["file"]).open(encoding="utf-8") as fh:
                batch: list[list[Any]] = []
                for line in fh:
                    batch.append([decode(v) for v in json.loads(line)])
                    if len(batch) == 1000:
                        conn.executemany(sql, batch)
                        n += len(batch)
                        batch = []
                conn.executemany(sql, batch)
                n += len(batch)
            if n != entry["rows"]:
                raise CorruptionError(f"archive table {table}: {n} rows read, the manifest says {entry['rows']}")
            counts[table] = n
        for name, seq in manifest.get("sequences", {}).items():  # an id once given, even if forgotten, never again
            if not conn.execute("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = ?", (seq, name)).rowcount:
                conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (name, seq))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
    for w in manifest["weights"]:
        target = dst / w["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(archive / w["file"], target)
    with Memory(dst) as mem:  # derived data: full-text tables now; vector cache and graph on open
        mem.journal.text.rebuild()
    return counts
