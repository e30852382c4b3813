"""Shared fixtures. ``SHARED`` is ../shared/data; tests that need it skip with a message when absent.

Plugin loading is hermetic: only this repository's first-party plugin packages (``plugins/*``) load
from entry points, so an agentmem plugin a developer has installed elsewhere cannot change what the
suite sees (tests that want fewer set ``AGENTMEM_LOAD_PLUGINS`` themselves)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
LONG = bool(os.environ.get("AGENTMEM_LONG"))
FIRST_PARTY = sorted(m.group(1) for p in ROOT.glob("plugins/*/pyproject.toml")
                     if (m := re.search(r'^name = "([^"]+)"', p.read_text(), re.M)))
os.environ.setdefault("AGENTMEM_LOAD_PLUGINS", ",".join(FIRST_PARTY))  # before any plugin loads

import agentmem  # noqa: E402


def shared(path: str) -> Path:
    """A file under ../shared/data, or a skip saying it is absent."""
    p = SHARED / path
    if not p.exists():
        pytest.skip(f"{p} is absent (the shared data sets sit beside the checkout)")
    return p


@pytest.fixture
def mem(tmp_path: Path) -> Iterator[agentmem.Memory]:
    """A memory with the default embedder (all-MiniLM-L6-v2), in a temporary directory."""
    m = agentmem.Memory(tmp_path / "mem")
    yield m
    m.close()


@pytest.fixture
def hmem(tmp_path: Path) -> Iterator[agentmem.Memory]:
    """A memory with the model-free hashing embedder: for storage behaviour at volume."""
    m = agentmem.Memory(tmp_path / "hmem", embedder="hash")
    yield m
    m.close()

from postgres import postgres_server, postgres_url  # noqa: E402, F401  (fixtures: a real PostgreSQL, tests/postgres.py)
