"""``agentmem serve`` and ``agentmem keys``: run the server, manage its scoped API keys."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import click

from agentmem.errors import AgentMemError, InvalidInputError


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.argument("path")
@click.option("--user", default=None, help="the scope every tool call acts in (a call may narrow it)")
@click.option("--agent", default=None, help="agent scope")
@click.option("--session", default=None, help="session scope")
@click.option("--read-only", is_flag=True, help="refuse every write (remember, forget, consolidate, add_fact)")
def mcp(path: str, user: str | None, agent: str | None, session: str | None, read_only: bool) -> None:
    """Serve the memory at PATH as an MCP server over stdio (for Claude Desktop, Cursor, any MCP client).

    This process owns the memory's writer lock. The scope comes from --user/--agent/--session: every
    tool call acts in it and may narrow it, never widen it; without any, calls reach every scope."""
    try:
        from agentmem.serve.mcp_tools import build
    except ImportError as exc:
        raise click.ClickException(f"the MCP server needs its extra: pip install 'agentmem-toolkit[mcp]' ({exc})") \
            from exc
    from agentmem.memory import Memory
    from agentmem.serve.keys import ApiKey

    scope = {k: v for k, v in (("user", user), ("agent", agent), ("session", session)) if v}
    key = ApiKey("stdio", scope, read_only=read_only, admin=not scope)
    try:
        mem = Memory(path)
    except AgentMemError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        build(mem, lambda ctx: key).run("stdio")
    finally:
        mem.close()


@click.command()
@click.argument("path")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8765, show_default=True, type=int, help="port to listen on")
def serve(path: str, host: str, port: int) -> None:
    """Serve the memory at PATH over HTTP (REST under /v1, OpenAPI at /openapi.json).

    This process owns the memory's writer lock; clients share it through the server. Without any
    API key created (`agentmem keys create`) the server listens on loopback only."""
    try:
        import uvicorn

        from agentmem.serve.app import create_app
    except ImportError as exc:
        raise click.ClickException(f"the server needs its extra: pip install 'agentmem-toolkit[serve]' ({exc})") \
            from exc
    from agentmem.memory import Memory
    from agentmem.serve.keys import KeyStore

    try:
        mem = Memory(path)
    except AgentMemError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        if not is_loopback(host) and not KeyStore(mem.journal).any():
            raise click.ClickException(
                f"refusing to listen on {host} with no API key: anyone who can reach it would read and write "
                f"every scope. Create keys first (`agentmem keys create {path} --user U`), or listen on 127.0.0.1")
        click.echo(f"agentmem serving {mem.path} on http://{host}:{port} (docs at /docs)", err=True)
        uvicorn.run(create_app(mem, host), host=host, port=port, log_level="warning", access_log=False)
    finally:
        mem.close()


@click.group()
def keys() -> None:
    """Scoped API keys of a memory's server (stored hashed in its journal)."""


def _journal(path: str) -> Any:
    """The memory's journal, opened on its own: keys can be managed while a server runs (SQLite
    serialises the writes; the server reads keys from the journal on every request)."""
    from agentmem.ltm.journal import Journal
    from agentmem.ltm.long_term import JOURNAL_FILE

    folder = Path(path)
    if not (folder / JOURNAL_FILE).exists():
        raise click.ClickException(f"{folder} holds no memory; create it first (e.g. `agentmem serve {path}`)")
    return Journal(folder / JOURNAL_FILE)


@keys.command("create")
@click.argument("path")
@click.option("--user", default=None)
@click.option("--agent", default=None)
@click.option("--session", default=None)
@click.option("--read-only", is_flag=True, help="the key can recall and read, not write")
@click.option("--admin", is_flag=True, help="the key reaches every scope (no --user/--agent/--session)")
@click.option("--note", default="", help="what the key is for (shown by `keys list`)")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def create(path: str, user: str | None, agent: str | None, session: str | None, read_only: bool, admin: bool,
           note: str, as_json: bool) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from agentmem import validate
    from agentmem.serve.keys import KeyStore

    journal = _journal(path)
    try:
        scope = validate.scope({k: v for k, v in (("user", user), ("agent", agent), ("session", session)) if v})
        secret, key = KeyStore(journal).create(scope, read_only=read_only, admin=admin, note=note)
    except InvalidInputError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        journal.close()
    if as_json:
        click.echo(json.dumps({"key": secret, **key.as_dict()}))
    else:
        click.echo(secret)
        click.echo(f"key {key.id}: scope {key.scope or 'every scope (admin)'}"
                   f"{', read-only' if key.read_only else ''}; shown once, keep it secret", err=True)


@keys.command("list")
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def list_keys(path: str, as_json: bool) -> None:
    """List the keys (ids, scopes, flags; never the keys themselves)."""
    from agentmem.serve.keys import KeyStore

    journal = _journal(path)
    try:
        found = KeyStore(journal).list()
    finally:
        journal.close()
    if as_json:
        click.echo(json.dumps([k.as_dict() for k in found]))
        return
    for k in found:
        flags = ", ".join(f for f, on in (("admin", k.admin), ("read-only", k.read_only),
                                          ("revoked", k.revoked_at is not None)) if on)
        click.echo(f"{k.id}  {json.dumps(k.scope) if k.scope else '*'}  {flags}  {k.note}".rstrip())


@keys.command("revoke")
@click.argument("path")
@click.argument("key_id")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def revoke(path: str, key_id: str, as_json: bool) -> None:
    """Revoke a key by its id (from `keys list`); it stops working at once."""
    from agentmem.errors import NotFoundError
    from agentmem.serve.keys import KeyStore

    journal = _journal(path)
    try:
        key = KeyStore(journal).revoke(key_id)
    except NotFoundError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        journal.close()
    click.echo(json.dumps(key.as_dict()) if as_json else f"revoked {key.id}")
