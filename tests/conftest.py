"""Shared fixtures. ``SHARED`` is ../shared/data; tests that need it skip with a message when absent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import agentmem

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
LONG = bool(os.environ.get("AGENTMEM_LONG"))


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
