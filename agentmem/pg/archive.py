"""Archives (:mod:`agentmem.archive`, format 1) into and out of a PostgreSQL database.

``agentmem import ARCHIVE postgresql://...`` fills an empty database (the schema of
:mod:`agentmem.pg.schema` is created first) with the archive's rows: the same ids, embeddings as
pgvector vectors (float32, exactly), weight files as chunked ``bytea`` checked against their sha256,
and the identity sequences set past every id the source ever gave. ``agentmem export
postgresql://... OUT`` writes the same archive back from one snapshot (a REPEATABLE READ transaction),
so SQLite -> PostgreSQL -> SQLite keeps every row.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from agentmem.archive_format import FORMAT, TABLES, VERSION, decode, encode, sha256_of
from agentmem.errors import CorruptionError, MemoryPathError
from agentmem.pg.schema import IDENTITY_TABLES, VECTOR_COLUMNS, migrate, quote

CHUNK = 1 << 20  # bytes of a weight file per weight_chunks row
SEQUENCED = ("items", "facts", "passages")  # the tables whose highest id ever given an archive records


def connect(url: str) -> Any:
    """A psycopg connection to ``url`` with pgvector's types; a clear error without the extra."""
    try:
        import psycopg
        from pgvector.psycopg import register_vector
    except ImportError as exc:
        raise MemoryPathError(f"PostgreSQL needs its extra: pip install 'agentmem-toolkit[postgres]' ({exc})") from exc
    try:
        conn = psycopg.connect(url, autocommit=True)
    except psycopg.Error as exc:
        raise MemoryPathError(f"cannot connect to {redact(url)}: {str(exc).strip()}") from exc
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    register_vector(conn)
    return conn


def redact(url: str) -> str:
    """``url`` without its password, for messages and manifests."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _columns(conn: Any, table: str) -> list[str]:
    rows = conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                        "AND table_schema = current_schema() ORDER BY ordinal_position", (table,)).fetchall()
    return [r[0] for r in rows]


def import_pg(archive: Path, manifest: dict[str, Any], url: str) -> dict[str, int]:
    """Fill the empty database at ``url`` with ``archive`` (checked already); rows per table."""
    conn = connect(url)
    counts: dict[str, int] = {}
    try:
        migrate(conn)
        if conn.execute("SELECT EXISTS (SELECT 1 FROM items) OR EXISTS (SELECT 1 FROM meta)").fetchone()[0]:
            raise MemoryPathError(f"{redact(url)} already holds a memory; import into an empty database")
        with conn.transaction():
            for table in TABLES:
                entry = manifest["tables"].get(table)
                if entry is None:
                    continue
                cols = entry["columns"]
                vectors = [i for i, c in enumerate(cols) if (table, c) in VECTOR_COLUMNS]
                sql = (f"INSERT INTO {table} ({', '.join(quote(c) for c in cols)}) "
                       f"VALUES ({', '.join(['%s'] * len(cols))})")
                n, batch = 0, []
                with (archive / entry["file"]).open(encoding="utf-8") as fh, conn.cursor() as cur:
                    for line in fh:
                        row = [decode(v) for v in json.loads(line)]
                        for i in vectors:
                            row[i] = np.frombuffer(row[i], dtype="<f4")
                        batch.append(row)
                        if len(batch) == 1000:
                            cur.executemany(sql, batch)
                            n, batch = n + len(batch), []
                    if batch:
                        cur.executemany(sql, batch)
                        n += len(batch)
                if n != entry["rows"]:
                    raise CorruptionError(f"archive table {table}: {n} rows read, the manifest says {entry['rows']}")
                counts[table] = n
            files = {f"weights/{r[0]}": (r[1], r[2]) for r in
                     conn.execute("SELECT file, name, version FROM weights").fetchall()}
            for w in manifest["weights"]:
                if w["file"] not in files:
                    raise CorruptionError(f"archive weight file {w['file']} has no row in weights.jsonl; export again")
                name, version = files[w["file"]]
                data = (archive / w["file"]).read_bytes()
                conn.cursor().executemany(
                    "INSERT INTO weight_chunks (name, version, seq, data) VALUES (%s, %s, %s, %s)",
                    [(name, version, i, data[s:s + CHUNK]) for i, s in enumerate(range(0, max(len(data), 1), CHUNK))])
            sequences = manifest.get("sequences", {})
            for table in IDENTITY_TABLES:  # past every id the source ever gave, a forgotten one included
                top = max(int(sequences.get(table, 0)),
                          int(conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()[0]))
                conn.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s, %s)", (table, max(top, 1), top > 0))
    finally:
        conn.close()
    return counts


def export_pg(url: str, out: Path) -> dict[str, Any]:
    """Write the archive of the PostgreSQL memory at ``url`` into the new directory ``out``; its manifest."""
    conn = connect(url)
    tables: dict[str, Any] = {}
    weights: list[dict[str, Any]] = []
    try:
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")  # one snapshot of every table
            if conn.execute("SELECT to_regclass('items') IS NULL").fetchone()[0]:
                raise MemoryPathError(f"{redact(url)} holds no memory to export")
            out.mkdir(parents=True, exist_ok=True)
            for table in TABLES:
                cols = _columns(conn, table)
                vectors = [i for i, c in enumerate(cols) if (table, c) in VECTOR_COLUMNS]
                file = out / f"{table}.jsonl"
                rows = 0
                with file.open("w", encoding="utf-8") as fh, conn.cursor() as cur:
                    cur.execute(f"SELECT {', '.join(quote(c) for c in cols)} FROM {table}")
                    for row in cur:
                        values = list(row)
                        for i in vectors:
                            values[i] = np.asarray(values[i].to_numpy(), dtype="<f4").tobytes()
                        values = [bytes(v) if isinstance(v, memoryview) else v for v in values]
                        fh.write(json.dumps([encode(v) for v in values], ensure_ascii=False) + "\n")
                        rows += 1
                tables[table] = {"file": file.name, "columns": cols, "rows": rows, "sha256": sha256_of(file)}
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            sequences = {}
            for table in SEQUENCED:
                last = conn.execute("SELECT pg_sequence_last_value(pg_get_serial_sequence(%s, 'id'))",
                                    (table,)).fetchone()[0]
                if last is not None:
                    sequences[table] = int(last)
            for rel, name, version, sha, size in conn.execute(
                    "SELECT file, name, version, sha256, size FROM weights ORDER BY name, version").fetchall():
                data = b"".join(r[0] for r in conn.execute(
                    "SELECT data FROM weight_chunks WHERE name = %s AND version = %s ORDER BY seq", (name, version)))
                if hashlib.sha256(data).hexdigest() != sha:
                    raise CorruptionError(f"weights {name} v{version} in {redact(url)} do not match their sha256")
                target = out / "weights" / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                weights.append({"file": f"weights/{rel}", "sha256": sha, "size": size})
            schema = int(conn.execute("SELECT version FROM agentmem_schema").fetchone()[0])
    finally:
        conn.close()
    manifest = {"format": FORMAT, "version": VERSION, "created_at": time.time(),
                "source": {"path": redact(url), "backend": "postgresql", "schema": schema,
                           "embedder": meta.get("embedder"), "dim": int(meta["dim"]) if "dim" in meta else None},
                "tables": tables, "sequences": sequences, "weights": weights}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest
