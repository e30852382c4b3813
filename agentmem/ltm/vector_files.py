"""The vector cache on disk: an ``.npz`` archive naming a rows file and an HNSW graph file.

Files, all named by the archive (``vectors.npz``: ids, tombstones, scopes, times, and a JSON ``meta``):
the float32 rows in ``vectors.<id>.f32``, which a save only appends to (rows are never changed in place;
a compaction writes a new file), and the HNSW graph in ``vectors.<id>.hnsw`` (the graph alone; its
bfloat16 copy of the vectors is encoded from the rows on load). A save so writes the new rows, the graph
and the small arrays, not every vector. Format 1 (the graph holding float32 vectors, or the vectors
inside the archive) is still read.

Every file is synced before the archive that names it is renamed into place, and files no archive names
are deleted after, so a crash at any point leaves the old archive with its files or the new one.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = 2  # 2: float32 rows in an append-only file, HNSW file without its vectors; 1 is still read
log = logging.getLogger("agentmem")


class NamedFileMissing(ValueError):
    """A file an archive names (rows, HNSW graph) is not there (damage, or a reader racing a writer's
    save)."""


def named_file(archive: Path, name: str, what: str) -> Path:
    """The file ``name`` beside ``archive``, which must be there; ``what`` names it in the error."""
    file = archive.with_name(name)
    if "/" in name or not file.is_file():
        raise NamedFileMissing(f"{what} {name} is missing")
    return file


@dataclass
class Snapshot:
    """What a save of rows [0, n) writes, fixed when it was taken: copies of the per-row arrays, the
    rows matrix itself (rows below n never change), and the graph file already written (or None)."""

    n: int
    generation: int
    vecs: np.ndarray
    arrays: dict[str, np.ndarray]  # ids, alive, codes, times
    interned: list[dict[str, int]]
    rows_file: tuple[str | None, int, int]  # (name, rows saved in it, their CRC-32)
    ann_file: Path | None = None


@dataclass
class Archive:
    """An archive read back: its meta and arrays (the rows are read by :meth:`VectorFiles.read_rows`)."""

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # ids, alive, codes, times?, vecs?
    ann: np.ndarray | None = None  # a format 1 graph serialised inside the archive


class VectorFiles:
    """The rows file a cache appends to and the saver thread of its background saves."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.rows_file: str | None = None  # the rows file the last save wrote (or load read)
        self.rows_saved = 0  # rows of it that are written and synced, the same as the cache's
        self.rows_crc = 0  # CRC-32 of those rows' bytes (continued as rows are appended)
        self.generation = 0  # bumped when rows are renumbered (compaction): a save in flight is stale
        self._state = threading.Lock()
        self._saver: threading.Thread | None = None

    @property
    def saving(self) -> bool:
        """Whether a background save is in flight."""
        return self._saver is not None

    def renumbered(self) -> None:
        """The cache's rows were renumbered: the next save starts a new rows file."""
        with self._state:
            self.rows_file, self.rows_saved, self.rows_crc = None, 0, 0
            self.generation += 1

    def start(self, path: Path, snap: Snapshot) -> None:
        """Finish ``snap`` on a saver thread; a failure is logged and leaves the old archive."""
        self._saver = threading.Thread(target=self._finish_in_background, args=(path, snap),
                                       name="agentmem-save", daemon=True)
        self._saver.start()

    def wait(self) -> None:
        """Block until a background save in flight has finished (or failed, logged)."""
        saver = self._saver
        if saver is not None:
            saver.join()
            self._saver = None

    def _finish_in_background(self, path: Path, snap: Snapshot) -> None:
        try:
            self.finish(path, snap)
        except Exception as exc:  # the archive on disk is the old one, whole; the next save retries
            log.warning("background save of the vector cache %s failed (%s); the next save writes it again",
                        path, exc)
            if snap.ann_file is not None:
                snap.ann_file.unlink(missing_ok=True)

    def finish(self, path: Path, snap: Snapshot) -> None:
        """Write a snapshot's files, sync them, and rename its archive into place."""
        n = snap.n
        tmp = path.with_name(path.name + ".tmp")
        meta: dict[str, Any] = {"format": FORMAT, "dim": self.dim, "n": n,
                                "dead": int(n - snap.arrays["alive"].sum()), "interned": snap.interned}
        meta["vec_file"], meta["vec_crc32"] = self._append_rows(path, snap.vecs, n, *snap.rows_file)
        if snap.ann_file is not None:
            with open(snap.ann_file, "rb+") as fh:
                os.fsync(fh.fileno())
            meta["ann_file"] = snap.ann_file.name
        arrays = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **snap.arrays}
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]  # the stub mistypes **kwds
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        with self._state:
            if snap.generation == self.generation:
                self.rows_file, self.rows_saved, self.rows_crc = meta["vec_file"], n, meta["vec_crc32"]
        for old in [*path.parent.glob(f"{path.stem}.*.hnsw"), *path.parent.glob(f"{path.stem}.*.f32")]:
            if old.name not in (meta.get("ann_file"), meta["vec_file"]):
                old.unlink(missing_ok=True)

    def _append_rows(self, path: Path, vecs: np.ndarray, n: int, name: str | None, start: int,
                     crc: int) -> tuple[str, int]:
        """Write rows [start, n) of ``vecs`` to the rows file ``name``, which holds ``start`` saved rows
        with CRC-32 ``crc``, and sync it; return (its name, CRC-32 of its n rows). New rows go after the
        saved ones (cutting off any a crashed save left there); with no file (first save, a compaction,
        a file gone), a new file gets every row."""
        if name is None or start > n or not path.with_name(name).is_file():
            name, start, crc = f"{path.stem}.{uuid.uuid4().hex[:12]}.f32", 0, 0
        row_bytes = self.dim * 4
        with open(path.with_name(name), "r+b" if start else "wb") as fh:
            fh.truncate(start * row_bytes)
            fh.seek(start * row_bytes)
            if n > start:
                block = vecs[start:n].data  # whole rows: contiguous
                fh.write(block)
                crc = zlib.crc32(block, crc)
            fh.flush()
            os.fsync(fh.fileno())
        return name, crc

    # --- reading -------------------------------------------------------------------------------

    def read_archive(self, path: Path) -> Archive:
        """The archive at ``path``; ValueError if it is unreadable, of another format or dimension."""
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode())
                if meta.get("format") not in (1, FORMAT) or meta.get("dim") != self.dim:
                    raise ValueError(f"format {meta.get('format')} / dim {meta.get('dim')} != {FORMAT} / {self.dim}")
                arrays = {name: z[name] for name in ("ids", "alive", "codes", "times", "vecs") if name in z.files}
                ann = z["ann"] if "ann" in z.files else None  # caches saved before the separate file
        except (zipfile.BadZipFile, KeyError, EOFError, json.JSONDecodeError) as exc:
            raise ValueError(str(exc)) from exc
        if "vec_file" not in meta and meta["format"] != 1:
            raise ValueError("the archive names no vector rows file")
        return Archive(meta, arrays, ann)

    def read_rows(self, path: Path, name: str, into: np.ndarray, crc: int) -> None:
        """Read the first ``len(into)`` rows of the rows file ``name`` into ``into`` (later rows are a
        crashed save's, never counted) and check their CRC-32."""
        file = named_file(path, name, "vector rows file")
        n, want = len(into), into.nbytes
        try:
            with open(file, "rb") as fh:
                got = fh.readinto(into.data) if n else 0
        except FileNotFoundError as exc:  # deleted while being read
            raise NamedFileMissing(f"vector rows file {name} is missing") from exc
        if got != want:
            raise ValueError(f"vector rows file {name} holds {got} bytes, expected {want}")
        if n and zlib.crc32(into.data) != crc:
            raise ValueError(f"vector rows file {name} fails its checksum")
        self.rows_file, self.rows_saved, self.rows_crc = name, n, crc

    def read_graph(self, path: Path, archive: Archive) -> Any:
        """The FAISS graph the archive names (or holds, format 1), None when it has none."""
        import faiss

        if archive.ann is not None:
            return faiss.deserialize_index(archive.ann)
        if "ann_file" not in archive.meta:
            return None
        name = str(archive.meta["ann_file"])
        file = named_file(path, name, "approximate index file")
        try:
            return faiss.read_index(str(file))
        except RuntimeError as exc:
            if not file.is_file():  # deleted while being read
                raise NamedFileMissing(f"approximate index file {name} is missing") from exc
            raise
