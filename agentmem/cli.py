"""The ``agentmem`` command line. Every command takes ``--json``; errors are one line and exit 1."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import click

from agentmem.errors import AgentMemError

PATH_HELP = "memory directory (default: $AGENTMEM_HOME or ~/.agentmem)"


def _emit(as_json: bool, data: Any, human: Callable[[], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, default=str))
    else:
        human()


def _scope(user: str | None, agent: str | None, session: str | None) -> dict[str, str] | None:
    scope = {k: v for k, v in (("user", user), ("agent", agent), ("session", session)) if v is not None}
    return scope or None


def _open(path: str | None, url: str | None = None, key: str | None = None, **kw: Any) -> Any:
    """The memory at ``path``, or with ``url`` a :class:`agentmem.Client` of the server there (which
    has the embedder loaded: no start-up cost here)."""
    if url:
        if path is not None:
            from agentmem.errors import InvalidInputError

            raise InvalidInputError("pass either --path (open the memory here) or --url (ask a server), not both")
        from agentmem.client import Client

        return Client(url, key)
    from agentmem.memory import Memory

    mem = Memory(path, **kw)
    for notice in mem.notices:
        click.echo(f"notice: {notice}", err=True)
    return mem


def remote_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--url and --key: run the command against a running ``agentmem serve`` instead of a directory."""
    f = click.option("--key", envvar="AGENTMEM_KEY", default=None,
                     help="API key for --url (default: $AGENTMEM_KEY)")(f)
    return click.option("--url", envvar="AGENTMEM_URL", default=None,
                        help="a running `agentmem serve` to use instead of --path (default: $AGENTMEM_URL)")(f)


def scope_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for name in ("session", "agent", "user"):
        f = click.option(f"--{name}", default=None, help=f"{name} scope")(f)
    return f


class Group(click.Group):
    """Turns agentmem errors into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AgentMemError as exc:
            click.echo(f"error: {getattr(exc, 'cli_message', exc)}", err=True)
            sys.exit(1)


@click.group(cls=Group)
@click.version_option(package_name="agentmem-toolkit")
def cli() -> None:
    """agentmem: fast, durable memory for agents and models."""


@cli.command()
@click.argument("texts", nargs=-1)
@click.option("--path", default=None, help=PATH_HELP)
@click.option("--file", "file", type=click.File("rb"), default=None,
              help="remember each line of a UTF-8 text file ('-' = stdin)")
@click.option("--metadata", default=None, help="JSON object stored with every text")
@click.option("--time", "when", default=None, help="event time (ISO-8601 or unix seconds)")
@scope_options
@remote_options
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def remember(texts: tuple[str, ...], path: str | None, file: Any, metadata: str | None, when: str | None,
             user: str | None, agent: str | None, session: str | None, url: str | None, key: str | None,
             as_json: bool) -> None:
    """Remember TEXTS (or the lines of --file)."""
    from agentmem.errors import InvalidInputError

    items = list(texts) + (_lines(file) if file else [])
    if not items:
        raise InvalidInputError("nothing to remember; pass texts or --file")
    try:
        meta = json.loads(metadata) if metadata else None
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"--metadata is not valid JSON: {exc}") from exc
    when_value: Any = when
    if when and when.replace(".", "", 1).isascii() and when.replace(".", "", 1).isdigit():
        when_value = float(when)  # unix seconds; anything else is parsed as ISO-8601
    with _open(path, url, key) as mem:
        ids = mem.remember_many(items, [meta] * len(items) if meta is not None else None,
                                _scope(user, agent, session), times=[when_value] * len(items))
    _emit(as_json, {"ids": ids}, lambda: click.echo(" ".join(map(str, ids))))


def _lines(file: Any) -> list[str]:
    """The non-blank lines of a UTF-8 file (a BOM is dropped, any newline convention works)."""
    from agentmem.errors import InvalidInputError

    data = file.read()
    name = getattr(file, "name", "-")
    name = "-" if not isinstance(name, str) or name.startswith("<") else name
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"--file {name} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); convert it "
            f"first, e.g. `iconv -f latin1 -t utf-8 {name} > utf8.txt`, and pass --file utf8.txt") from exc
    return [line.rstrip("\n") for line in io.StringIO(text, newline=None) if line.strip()]


@cli.command()
@click.argument("query")
@click.option("--path", default=None, help=PATH_HELP)
@click.option("-k", "k", default=5, show_default=True, help="number of hits")
@click.option("--filter", "filters", multiple=True, help="metadata equality KEY=VALUE (repeatable)")
@click.option("--since", default=None, help="event time lower bound")
@click.option("--until", default=None, help="event time upper bound")
@scope_options
@remote_options
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def recall(query: str, path: str | None, k: int, filters: tuple[str, ...], since: str | None,
           until: str | None, user: str | None, agent: str | None, session: str | None, url: str | None,
           key: str | None, as_json: bool) -> None:
    """Recall memories relevant to QUERY."""
    from agentmem.validate import pairs

    parsed = pairs(filters, "--filter")
    with _open(path, url, key, read_only=True) as mem:
        hits = mem.recall(query, k=k, scope=_scope(user, agent, session), filters=parsed or None,
                          since=since, until=until)

    def human() -> None:
        if not hits:
            click.echo("no memories found")
        for h in hits:
            click.echo(f"{h.id:>6}  {h.score:.4f}  {h.source:<5}  {h.text}")

    _emit(as_json, [asdict(h) for h in hits], human)


@cli.command()
@click.argument("ids", nargs=-1, type=int, required=True)
@click.option("--path", default=None, help=PATH_HELP)
@remote_options
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def forget(ids: tuple[int, ...], path: str | None, url: str | None, key: str | None, as_json: bool) -> None:
    """Forget items by id, from every store."""
    with _open(path, url, key) as mem:
        removed = mem.forget_many(ids)  # all or none: every id is checked first
    _emit(as_json, {"forgotten": removed}, lambda: click.echo(f"forgot {len(removed)} item(s)"))


@cli.command()
@click.option("--path", default=None, help=PATH_HELP)
@remote_options
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def consolidate(path: str | None, url: str | None, key: str | None, as_json: bool) -> None:
    """Move short-term memory into long-term memory now (with --url, counts instead of ids)."""
    with _open(path, url, key) as mem:
        report = mem.consolidate()
    data = report if url else asdict(report)  # a server answers counts

    def count(field: str) -> int:
        return int(data[field]) if url else len(data[field])

    _emit(as_json, data, lambda: click.echo(
        f"promoted {count('promoted')}, merged {count('merged')}, facts {data['facts']} in {data['seconds']:.2f}s"))


@cli.command()
@click.option("--path", default=None, help=PATH_HELP)
@remote_options
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def stats(path: str | None, url: str | None, key: str | None, as_json: bool) -> None:
    """Counts and sizes of every store."""
    with _open(path, url, key, read_only=True) as mem:
        data = mem.stats()
    def human() -> None:
        for key, value in data.items():
            if key == "read_only":  # how this command opened it, not a property of the memory
                key, value = "mode", "read-only"
            click.echo(f"{key:<18} {value}")

    _emit(as_json, data, human)


@cli.command()
@click.option("--path", default=None, help=PATH_HELP + "; plugins are per installation, so it is only reported")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def plugins(path: str | None, as_json: bool) -> None:
    """List loaded plugins and what each provides."""
    from agentmem.config import memory_path
    from agentmem.plugins import load_plugins, registry

    pm = load_plugins()
    reg = registry()
    loaded = {name: _plugin_origin(p) for name, p in pm.list_name_plugin()}
    data = {"path": str(memory_path(path)), "plugins": loaded,
            **{kind: {name: e.plugin for name, e in sorted(table.items())} for kind, table in reg.items()}}

    def human() -> None:
        for kind, table in reg.items():
            click.echo(f"{kind}:")
            for name, entry in sorted(table.items()):
                click.echo(f"  {name:<16} from {entry.plugin}")
        click.echo("plugins:")
        for name, origin in loaded.items():
            click.echo(f"  {name:<40} {origin}")
        if path is not None:
            click.echo(f"path: {data['path']} (plugins are the same for every memory directory)")

    _emit(as_json, data, human)


def _plugin_origin(plugin: Any) -> str:
    return str(getattr(plugin, "__file__", None) or type(plugin).__module__)


@cli.command()
@click.option("--path", default=None, help="memory directory for the demo (default: a temporary one)")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def demo(path: str | None, as_json: bool) -> None:
    """Remember a shipped multi-session conversation, consolidate, recall, reopen, recall again."""
    from agentmem.config import memory_path
    from agentmem.demo import run_demo

    if path is not None:
        memory_path(path)  # refuses an empty one
    result = run_demo(path, echo=None if as_json else click.echo)
    if as_json:
        click.echo(json.dumps(result, default=str))


@cli.command("export")
@click.argument("src")
@click.argument("out")
@click.option("--json", "as_json", is_flag=True, help="print the manifest as JSON")
def export_cmd(src: str, out: str, as_json: bool) -> None:
    """Write the memory at SRC as an archive into the new directory OUT (works beside a running writer)."""
    from agentmem.archive import export_memory

    manifest = export_memory(src, out)
    counts = {t: e["rows"] for t, e in manifest["tables"].items()}
    _emit(as_json, manifest, lambda: click.echo(
        f"exported {counts.get('items', 0)} items, {counts.get('merges', 0)} merges, {counts.get('facts', 0)} facts, "
        f"{len(manifest['weights'])} weight files to {out}"))


@cli.command("import")
@click.argument("archive")
@click.argument("dst")
@click.option("--json", "as_json", is_flag=True, help="print the rows imported per table as JSON")
def import_cmd(archive: str, dst: str, as_json: bool) -> None:
    """Make the new memory DST of ARCHIVE (written by `agentmem export`): the same ids and records."""
    from agentmem.archive import import_memory

    counts = import_memory(archive, dst)
    _emit(as_json, counts, lambda: click.echo(
        f"imported {counts.get('items', 0)} items, {counts.get('merges', 0)} merges, {counts.get('facts', 0)} facts "
        f"into {dst}"))


def _load_plugin_commands() -> None:
    from agentmem.plugins import hook

    hook().register_commands(cli=cli)


def main() -> None:
    _load_plugin_commands()
    cli(prog_name="agentmem")
