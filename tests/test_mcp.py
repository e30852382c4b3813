"""The MCP server through the MCP Python SDK's own ``Client``: over stdio (the client spawns
``agentmem mcp``) and over Streamable HTTP against a live ``agentmem serve`` at ``/mcp``. Scope rules
are the REST API's: a connection's scope (stdio: the command line; HTTP: the bearer key) may be
narrowed by a call, never widened, and no tool reaches another user's item."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp", reason="the MCP extra: pip install 'agentmem-toolkit[mcp]'")
pytest.importorskip("fastapi", reason="the server extra: pip install 'agentmem-toolkit[serve]'")

import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from servers import ENV, Server, keys, make_memory

import agentmem

TOOLS = {"remember", "recall", "get", "forget", "consolidate", "add_fact", "facts", "neighbours", "stats"}


def stdio(path: Path, *args: str) -> Client:
    return Client(StdioServerParameters(command=sys.executable, args=["-m", "agentmem", "mcp", str(path), *args],
                                        env=ENV), read_timeout_seconds=60)


def http(url: str, http_client: httpx2.AsyncClient) -> Client:
    """A session with the server's /mcp; the key travels in ``http_client``'s headers."""
    return Client(streamable_http_client(f"{url}/mcp", http_client=http_client), read_timeout_seconds=60)


async def call(c: Client, tool: str, **args: Any) -> Any:
    """A tool's structured result; a tool error raises AssertionError with its text."""
    r = await c.call_tool(tool, args)
    assert not r.is_error, r.content[0].text
    return r.structured_content


async def refused(c: Client, tool: str, **args: Any) -> str:
    """The text of the error a tool call must end in."""
    r = await c.call_tool(tool, args)
    assert r.is_error, f"{tool}({args}) was not refused: {r.structured_content}"
    return str(r.content[0].text)


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), 240))


def test_stdio_lists_the_tools_and_remembers_recalls_forgets_reads_facts(tmp_path: Path) -> None:
    make_memory(tmp_path / "m")

    async def main() -> None:
        async with stdio(tmp_path / "m", "--user", "alice") as c:
            tools = {t.name: t for t in (await c.list_tools()).tools}
            assert set(tools) == TOOLS
            assert all(t.description and len(t.description) > 60 for t in tools.values())  # written for a model
            assert tools["recall"].output_schema is not None  # structured output
            ids = (await call(c, "remember", text="Caroline went to the support group on 7 May 2023",
                              metadata={"topic": "support"}, time="2023-05-07"))["ids"]
            more = (await call(c, "remember", items=[{"text": f"order {n} shipped to warehouse {n % 3}"}
                                                     for n in range(5)]))["ids"]
            assert len(set(ids + more)) == 6
            hits = (await call(c, "recall", query="When did Caroline go to the support group?", k=3))["hits"]
            assert hits[0]["id"] == ids[0] and hits[0]["scope"] == {"user": "alice"}
            assert hits[0]["metadata"] == {"topic": "support"} and hits[0]["event_time"] is not None
            item = await call(c, "get", id=ids[0])
            assert item["text"].startswith("Caroline") and item["tier"] == "stm"
            assert (await call(c, "consolidate"))["promoted"] == 6
            fact = await call(c, "add_fact", subject="Caroline", relation="attended", object="support group",
                              item=ids[0])
            assert fact == {"subject": "Caroline", "relation": "attended", "object": "support group", "item": ids[0]}
            assert (await call(c, "facts", entity="caroline"))["facts"] == [fact]  # names match in any case
            assert (await call(c, "neighbours", entity="Caroline"))["entities"] == ["support group"]
            around = json.loads((await c.read_resource("graph://Caroline")).contents[0].text)
            assert around["facts"] == [fact] and around["neighbours"] == ["support group"]
            assert (await call(c, "forget", ids=[more[0]]))["ids"] == [more[0]]
            assert "NotFoundError" in await refused(c, "get", id=more[0])
            assert "NotFoundError" in await refused(c, "forget", ids=[more[1], 999_999])  # all or none
            assert (await call(c, "get", id=more[1]))["id"] == more[1]
            for widen in ({"user": "bob"}, {}, {"session": "s1"}):
                assert "ScopeDeniedError" in await refused(c, "recall", query="PIN", scope=widen)
                assert "ScopeDeniedError" in await refused(c, "remember", text="planted", scope=widen)
            assert "ScopeDeniedError" in await refused(c, "stats")  # stats cover every scope
            assert "InvalidInputError" in await refused(c, "remember")  # neither text nor items
            for tool, args, error in (("recall", {"query": "x", "k": 0}, "InvalidInputError"),
                                      ("recall", {"query": "   "}, "InvalidInputError"),
                                      ("recall", {"query": "x", "filters": {"bad key!": 1}}, "InvalidInputError"),
                                      ("remember", {"text": "x", "time": "not a time"}, "InvalidInputError"),
                                      ("get", {"id": -5}, "NotFoundError"),
                                      ("neighbours", {"entity": "Caroline", "depth": 9}, "depth"),
                                      ("forget", {"ids": "1"}, "ids"),
                                      ("recall", {"query": "x", "k": 5000}, "RequestTooLargeError"),
                                      ("remember", {"items": []}, "InvalidInputError"),
                                      ("remember", {"items": [{"text": "a", "embedding": [0.1] * 256},
                                                              {"text": "b"}]}, "every item or with none")):
                text = await refused(c, tool, **args)  # bad input: an error naming it, and the server lives on
                assert error in text, (tool, args, text)
            narrow = (await call(c, "remember", text="a note of one session",
                                 scope={"user": "alice", "session": "s1"}))["ids"][0]
            found = await call(c, "recall", query="note of one session", scope={"user": "alice", "session": "s1"})
            assert [h["id"] for h in found["hits"]] == [narrow]

    run(main)
    with agentmem.Memory(tmp_path / "m") as mem:  # what the tools did is in the memory, durably
        assert len(mem) == 6 and mem.recall("support group", k=1)[0].text.startswith("Caroline")


def test_stdio_read_only_and_unscoped(tmp_path: Path) -> None:
    make_memory(tmp_path / "m")
    with agentmem.Memory(tmp_path / "m") as mem:
        bobs = mem.remember("bob's bank PIN is 4321", scope={"user": "bob"})

    async def main() -> None:
        async with stdio(tmp_path / "m", "--user", "alice", "--read-only") as c:
            for tool, args in (("remember", {"text": "x"}), ("forget", {"ids": [bobs]}), ("consolidate", {}),
                               ("add_fact", {"subject": "a", "relation": "b", "object": "c"})):
                text = await refused(c, tool, **args)
                assert "ScopeDeniedError" in text, text
            assert "ScopeDeniedError" in await refused(c, "get", id=bobs)  # bob's item: not alice's
            assert (await call(c, "recall", query="bank PIN"))["hits"] == []
        async with stdio(tmp_path / "m") as c:  # no scope on the command line: every scope
            assert (await call(c, "get", id=bobs))["scope"] == {"user": "bob"}
            assert (await call(c, "stats"))["items"] == 1

    run(main)


@pytest.fixture
def server(tmp_path: Path) -> Any:
    make_memory(tmp_path / "mem")
    s = Server(tmp_path / "mem")
    yield s
    s.stop()


def test_streamable_http_uses_the_servers_keys_and_never_reaches_another_user(server: Server) -> None:
    alice, bob = keys(server.path, "--user", "alice"), keys(server.path, "--user", "bob")
    admin = keys(server.path, "--admin")
    assert httpx2.post(f"{server.url}/mcp", json={}).status_code == 401  # no key: no MCP session at all

    async def main() -> None:
        async with httpx2.AsyncClient(headers={"authorization": f"Bearer {bob['key']}"}, timeout=60) as hb, \
                httpx2.AsyncClient(headers={"authorization": f"Bearer {alice['key']}"}, timeout=60) as ha, \
                httpx2.AsyncClient(headers={"authorization": f"Bearer {admin['key']}"}, timeout=60) as hr:
            async with http(server.url, hb) as b:
                assert {t.name for t in (await b.list_tools()).tools} == TOOLS
                secret = (await call(b, "remember", text="bob's bank PIN is 4321"))["ids"][0]
                await call(b, "add_fact", subject="Bob", relation="banks with", object="Northwind", item=secret)
            async with http(server.url, ha) as a:
                mine = (await call(a, "remember", text="alice keeps her notes in the red folder"))["ids"][0]
                hits = (await call(a, "recall", query="bank PIN 4321 bob", k=20))["hits"]
                assert [h["id"] for h in hits] == [mine]  # bob's item never comes back
                for tool, args in (("get", {"id": secret}), ("forget", {"ids": [secret]}),
                                   ("add_fact", {"subject": "x", "relation": "y", "object": "z", "item": secret}),
                                   ("recall", {"query": "PIN", "scope": {"user": "bob"}}),
                                   ("facts", {"entity": "Bob", "scope": {"user": "bob"}}),
                                   ("neighbours", {"entity": "Bob", "scope": {"user": "bob"}}), ("stats", {})):
                    text = await refused(a, tool, **args)
                    assert "ScopeDeniedError" in text, (tool, text)
                assert (await call(a, "facts", entity="Bob"))["facts"] == []  # only alice's facts
                around = json.loads((await a.read_resource("graph://Bob")).contents[0].text)
                assert around["facts"] == [] and around["neighbours"] == []
                assert (await call(a, "forget", ids=[mine]))["ids"] == [mine]  # her own: forgotten
                assert "NotFoundError" in await refused(a, "get", id=mine)
            async with http(server.url, hr) as r:
                assert (await call(r, "get", id=secret))["scope"] == {"user": "bob"}
                assert (await call(r, "stats"))["items"] == 1  # bob's; alice forgot hers

    run(main)


def test_kill_9_of_the_stdio_server_mid_stream_loses_no_acknowledged_remember(tmp_path: Path) -> None:
    make_memory(tmp_path / "m")
    acked: list[int] = []

    async def main() -> None:
        async with stdio(tmp_path / "m", "--user", "u") as c:
            for n in range(10_000):
                r = await c.call_tool("remember", {"text": f"note {n}: the meter read {n * 7} units"})
                if r.is_error:
                    return  # the server is gone: the call was never acknowledged
                acked.extend(r.structured_content["ids"])
                if n == 40:  # mid-stream, while the client keeps writing
                    subprocess.run(["pkill", "-9", "-f", f"agentmem mcp {tmp_path / 'm'}"], check=False)

    with contextlib.suppress(Exception):  # the transport breaks under the client: what was acknowledged counts
        run(main)
    assert len(acked) >= 40
    deadline = time.time() + 30
    while True:  # the killed process's lock goes with it
        try:
            mem = agentmem.Memory(tmp_path / "m")
            break
        except agentmem.errors.MemoryLockedError:
            assert time.time() < deadline
            time.sleep(0.2)
    with mem:
        assert set(mem.get_many(acked)) == set(acked)
        assert len(mem) >= len(acked)
