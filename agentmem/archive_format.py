"""The archive format's constants and value encoding, shared by the SQLite side
(:mod:`agentmem.archive`) and the PostgreSQL side (:mod:`agentmem.pg.archive`); the format is
documented in :mod:`agentmem.archive`."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

FORMAT, VERSION = "agentmem-archive", 1
TABLES = ("meta", "items", "merges", "facts", "passages", "weights", "weight_heads", "log", "api_keys")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def encode(value: Any) -> Any:
    return {"b64": base64.b64encode(value).decode("ascii")} if isinstance(value, bytes) else value


def decode(value: Any) -> Any:
    return base64.b64decode(value["b64"]) if isinstance(value, dict) and set(value) == {"b64"} else value
