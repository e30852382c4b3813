"""Benchmarks: programs that print a table and write JSON (``agentmem bench ...``), never timed tests."""

from __future__ import annotations

import click


@click.group()
def bench() -> None:
    """Benchmarks (each prints a table; --json OUT writes every figure)."""
