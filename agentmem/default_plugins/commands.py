"""Built-in sub-commands beyond the core ones in agentmem.cli (imported lazily)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentmem.hookspecs import hookimpl

if TYPE_CHECKING:
    import click


@hookimpl
def register_commands(cli: click.Group) -> None:
    from agentmem.bench import bench, throughput  # noqa: F401  (registers `bench throughput`)

    cli.add_command(bench)
    import agentmem.bench.adapters
    import agentmem.bench.locomo
    import agentmem.bench.parallel
    import agentmem.bench.pgvector
    import agentmem.bench.serve  # noqa: F401  (each registers its `bench` subcommand)
    from agentmem.doctor import doctor

    cli.add_command(doctor)
    from agentmem.runner import run

    cli.add_command(run)
    from agentmem.serve.cli import keys, mcp, serve

    cli.add_command(serve)
    cli.add_command(mcp)
    cli.add_command(keys)
