"""Weight memory: versioned safetensors checkpoints with metadata and sha256.

Files live at ``<memdir>/weights/<name>/v<version>.safetensors``; each is written to a temporary file,
fsynced and renamed before its journal row commits, so a version listed in the journal always has a
complete file. ``load`` verifies the sha256 and refuses a damaged file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentmem.errors import CorruptionError, InvalidInputError, NotFoundError, ReadOnlyError

if TYPE_CHECKING:
    from agentmem.ltm.journal import Journal

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class WeightVersion:
    name: str
    version: int
    sha256: str
    size: int
    metadata: dict[str, Any]
    created_at: float
    current: bool


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise InvalidInputError(
            f"weight name {name!r} must start with a letter or digit and use only letters, digits, "
            "'_', '-' and '.' (at most 128 characters, no '..')")
    return name


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_state(state: object) -> dict[str, Any]:
    """A state dict safetensors can store: str keys, numeric or bool tensors/arrays (numpy arrays are
    converted to torch when the dict mixes both)."""
    import numpy as np

    if not isinstance(state, dict) or not state:
        raise InvalidInputError("state must be a non-empty dict of tensors, e.g. model.state_dict()")
    out: dict[str, Any] = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise InvalidInputError(f"state keys must be strings, got {key!r}")
        if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
            out[key] = value
            continue
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError):
            arr = np.asarray(None)
        if arr.dtype.kind not in "biuf":
            raise InvalidInputError(f"state[{key!r}] must be a torch tensor or a numeric numpy array, "
                                    f"got {type(value).__name__}")
        out[key] = np.array(arr, dtype=arr.dtype.newbyteorder("="), order="C")  # keeps 0-d shapes
    if _is_torch(out) and not all(type(v).__module__.startswith("torch") for v in out.values()):
        import torch

        out = {k: v if type(v).__module__.startswith("torch") else torch.from_numpy(v)
               for k, v in out.items()}
    return out


def _is_torch(state: dict[str, Any]) -> bool:
    return any(type(v).__module__.startswith("torch") for v in state.values())


ALIASES = "agentmem.aliases"  # safetensors metadata key: {alias: stored key} of tied tensors


def state_from_bytes(data: bytes, framework: str = "np") -> dict[str, Any]:
    """A state dict from the bytes of a safetensors file (a download of :meth:`WeightStore.file`),
    tied tensors tied again; numpy arrays, or torch tensors with ``framework="pt"``."""
    from safetensors.numpy import load

    if len(data) < 8 or int.from_bytes(data[:8], "little") > len(data) - 8:
        raise InvalidInputError("not a safetensors file (its header is cut short)")
    try:
        header = json.loads(data[8: 8 + int.from_bytes(data[:8], "little")])
        state: dict[str, Any] = dict(load(data))
    except Exception as exc:  # safetensors raises its own error types for a malformed file
        raise InvalidInputError(f"not a safetensors file ({exc})") from exc
    for alias, kept in json.loads((header.get("__metadata__") or {}).get(ALIASES, "{}")).items():
        state[alias] = state[kept]
    if framework == "pt":
        import torch

        state = {k: torch.from_numpy(v.copy()) for k, v in state.items()}
    return state


def _dedupe(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Tensors safetensors can write (it refuses shared storage), and the aliases to restore on load.

    A tensor that is the same view of the same storage as an earlier key (tied weights, e.g. an
    embedding and an output layer) is stored once, under the first key, and recorded as an alias; a
    different view of shared storage (a slice) is stored as a copy of its own.
    """
    tensors: dict[str, Any] = {}
    aliases: dict[str, str] = {}
    first: dict[tuple[Any, ...], str] = {}  # (storage, offset, shape, stride, dtype) -> key
    storages: set[Any] = set()
    for key, value in state.items():
        t = value.detach()
        if t.device.type == "meta":
            raise InvalidInputError(f"state[{key!r}] is on the meta device (it has no data); materialise the "
                                    "model (e.g. model.to_empty(device='cpu') and load its weights) first")
        storage = (t.device.type, t.device.index, t.untyped_storage().data_ptr()) if t.numel() else None
        view = (storage, t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)
        if storage is not None and view in first:
            aliases[key] = first[view]
            continue
        shared = storage is not None and storage in storages
        if storage is not None:
            first[view] = key
            storages.add(storage)
        t = t.cpu()
        tensors[key] = t.clone().contiguous() if shared or not t.is_contiguous() else t
    return tensors, aliases


class WeightStore:
    """save / load / versions / rollback of named state dicts."""

    def __init__(self, journal: Journal, root: Path) -> None:
        self._journal = journal
        self._root = root

    def save(self, name: str, state: dict[str, Any], metadata: dict[str, Any] | None = None) -> int:
        """Store a state dict (torch tensors or numpy arrays) as the next version; return its number."""
        name = _check_name(name)
        if self._journal.read_only:
            raise ReadOnlyError("this memory was opened read_only=True; open it without to save weights")
        state = _check_state(state)
        try:
            meta_json = json.dumps(metadata or {}, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"weight metadata must be JSON-serialisable: {exc}") from exc
        folder = self._root / name
        new_folder = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        try:
            with self._journal.tx() as c:
                row = c.execute("SELECT MAX(version) FROM weights WHERE name = ?", (name,)).fetchone()
                version = (row[0] or 0) + 1
                path = folder / f"v{version}.safetensors"
                tmp = folder / f".v{version}.safetensors.tmp"
                try:
                    self._write(tmp, state)
                except BaseException:
                    tmp.unlink(missing_ok=True)
                    raise
                os.replace(tmp, path)
                self._commit(c, name, version, path, meta_json)
        except BaseException:
            if new_folder:  # a first save that failed leaves no empty weights/<name>/ behind
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise
        return version

    def _commit(self, c: Any, name: str, version: int, path: Path, meta_json: str) -> None:
        _fsync_dir(path.parent)
        c.execute("INSERT INTO weights (name, version, file, sha256, size, metadata, created_at) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)",
                  (name, version, str(path.relative_to(self._root)), file_sha256(path), path.stat().st_size,
                   meta_json, time.time()))
        c.execute("INSERT OR REPLACE INTO weight_heads (name, version) VALUES (?, ?)", (name, version))

    @staticmethod
    def _write(path: Path, state: dict[str, Any]) -> None:
        if _is_torch(state):
            from safetensors.torch import save_file as save_torch

            tensors, aliases = _dedupe(state)
            meta = {ALIASES: json.dumps(aliases, sort_keys=True)} if aliases else None
            try:
                save_torch(tensors, str(path), metadata=meta)
            except (RuntimeError, ValueError) as exc:  # safetensors' own refusals
                raise InvalidInputError(f"safetensors cannot store this state dict ({exc}); pass dense "
                                        "tensors, e.g. model.state_dict()") from exc
        else:
            from safetensors.numpy import save_file as save_numpy

            save_numpy(state, str(path))  # _check_state made every array C-contiguous, shapes kept
        with open(path, "rb+") as fh:
            os.fsync(fh.fileno())

    def _row(self, name: str, version: int | None) -> tuple[Any, ...]:
        name = _check_name(name)
        with self._journal.lock:
            if version is None:
                head = self._journal.conn.execute(
                    "SELECT version FROM weight_heads WHERE name = ?", (name,)).fetchone()
                if head is None:
                    raise NotFoundError(f"no weights named {name!r}; save some with memory.weights.save()")
                version = head[0]
            row = self._journal.conn.execute(
                "SELECT file, sha256, version FROM weights WHERE name = ? AND version = ?",
                (name, version)).fetchone()
        if row is None:
            raise NotFoundError(f"weights {name!r} have no version {version}; see versions({name!r})")
        return tuple(row)

    def file(self, name: str, version: int | None = None) -> tuple[Path, str, int]:
        """(the safetensors file, its sha256, the version) of ``version`` (the current one by
        default), after checking the file against its sha256: what a server sends for a download."""
        file, sha, version = self._row(name, version)
        path = self._root / file
        if not path.exists():
            raise CorruptionError(f"weights file {path} for {name!r} v{version} is missing; "
                                  "restore it from backup or roll back to another version")
        if file_sha256(path) != sha:
            raise CorruptionError(f"weights file {path} for {name!r} v{version} fails its sha256 check; "
                                  "it was damaged after saving: roll back to another version")
        return path, sha, int(version)

    def load(self, name: str, version: int | None = None, framework: str = "pt") -> dict[str, Any]:
        """Return the state dict of ``version`` (the current one by default) as torch tensors
        (``framework="pt"``) or numpy arrays (``"np"``), after checking its sha256."""
        path, _, _ = self.file(name, version)
        from safetensors import safe_open

        with safe_open(str(path), framework="np" if framework == "np" else "pt") as fh:
            state = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (safe_open is not a dict)
            aliases = json.loads((fh.metadata() or {}).get(ALIASES, "{}"))
        for alias, kept in aliases.items():  # tied tensors were stored once: tie them again
            state[alias] = state[kept]
        return state

    def versions(self, name: str) -> list[WeightVersion]:
        """Every stored version of ``name``, oldest first."""
        name = _check_name(name)
        with self._journal.lock:
            head = self._journal.conn.execute(
                "SELECT version FROM weight_heads WHERE name = ?", (name,)).fetchone()
            rows = self._journal.conn.execute(
                "SELECT version, sha256, size, metadata, created_at FROM weights WHERE name = ? "
                "ORDER BY version", (name,)).fetchall()
        return [WeightVersion(name, v, sha, size, json.loads(m), t, head is not None and head[0] == v)
                for v, sha, size, m, t in rows]

    def names(self) -> list[str]:
        with self._journal.lock:
            return [r[0] for r in self._journal.conn.execute("SELECT name FROM weight_heads ORDER BY name")]

    def rollback(self, name: str, version: int) -> None:
        """Make ``version`` the current one (``load(name)`` returns it; later versions are kept)."""
        if self._journal.read_only:
            raise ReadOnlyError("this memory was opened read_only=True; open it without to roll back")
        self._row(name, version)
        with self._journal.tx() as c:
            c.execute("UPDATE weight_heads SET version = ? WHERE name = ?", (version, name))

    def verify(self, quick: bool = False) -> list[str]:
        """Problems with stored weight files: missing, wrong size, or (unless ``quick``) sha256 mismatch."""
        problems = []
        with self._journal.lock:
            rows = self._journal.conn.execute("SELECT name, version, file, sha256, size FROM weights").fetchall()
        for name, version, file, sha, size in rows:
            path = self._root / file
            if not path.exists():
                problems.append(f"weights {name} v{version}: file {file} is missing")
            elif path.stat().st_size != size or (not quick and file_sha256(path) != sha):
                what = "size" if path.stat().st_size != size else "sha256"
                problems.append(f"weights {name} v{version}: {what} mismatch in {file}")
        return problems

    def strays(self) -> list[Path]:
        """Files under the weights folder that no journal row owns: temporary files and versions whose
        save was interrupted before its journal commit (never acknowledged, safe to delete)."""
        if not self._root.is_dir():
            return []
        with self._journal.lock:
            owned = {self._root / r[0] for r in self._journal.conn.execute("SELECT file FROM weights")}
        return sorted(p for p in self._root.glob("*/*") if p.is_file() and p not in owned)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
