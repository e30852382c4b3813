"""``agentmem bench adapters``: what each integration adds to the Python call it wraps.

One memory of ``--n`` items (the throughput bench's corpus) in one scope; per integration, p50 of
``--queries`` calls against p50 of the direct call in the same run (``x`` = adapter / direct):

- LangChain ``AgentMemRetriever.invoke`` and LlamaIndex ``AgentMemRetriever.retrieve`` against
  ``Memory.recall`` (same query, scope, k);
- LangGraph ``AgentMemStore.search(namespace, query=...)`` against ``Memory.recall`` with the
  namespace filter it sends;
- MCP over stdio (the SDK's ``Client`` spawning ``agentmem mcp``): ``recall`` and ``remember`` tool
  calls against ``Memory.recall`` and ``Memory.remember`` (the direct figures measured in this
  process before the server opens the memory).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np

from agentmem.bench import bench
from agentmem.bench.corpus import base_texts


def p50(fn: Callable[[int], Any], n: int) -> float:
    """Median milliseconds of ``fn(i)`` for i in range(n), after one untimed call."""
    fn(0)
    times = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
    return float(np.percentile(times, 50) * 1000)


async def _mcp(path: Path, queries: list[str], k: int) -> dict[str, float]:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    server = StdioServerParameters(command=sys.executable, args=["-m", "agentmem", "mcp", str(path), "--user", "u"])
    out: dict[str, float] = {}
    async with Client(server, read_timeout_seconds=120) as client:
        for tool, args in (("recall", lambda i: {"query": queries[i % len(queries)], "k": k}),
                           ("remember", lambda i: {"text": f"an MCP note {i}: {queries[i % len(queries)]}"})):
            await client.call_tool(tool, args(0))
            times = []
            for i in range(len(queries)):
                t = time.perf_counter()
                r = await client.call_tool(tool, args(i))
                times.append(time.perf_counter() - t)
                if r.is_error:
                    raise click.ClickException(f"MCP {tool} failed: {getattr(r.content[0], 'text', r.content)}")
            out[tool] = float(np.percentile(times, 50) * 1000)
    return out


@bench.command("adapters")
@click.option("--n", default=2000, show_default=True, help="items in the memory")
@click.option("--queries", "n_queries", default=200, show_default=True, help="calls per measurement")
@click.option("--embedder", default="minilm", show_default=True, help="the memory's embedder")
@click.option("--json", "json_out", default=None, help="write every figure here")
def adapters_bench(n: int, n_queries: int, embedder: str, json_out: str | None) -> None:
    """The cost of MCP, LangChain, LangGraph and LlamaIndex calls against the Memory calls they wrap."""
    import agentmem

    texts, _ = base_texts(n)
    queries = texts[:: max(1, len(texts) // n_queries)][:n_queries]
    scope = {"user": "u"}
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="agentmem-bench-adapters-") as tmp:
        path = Path(tmp) / "m"
        with agentmem.Memory(path, embedder=embedder) as mem:
            mem.remember_many(texts, scope=scope, progress=False)
            mem.consolidate()

            def recall(i: int) -> Any:
                return mem.recall(queries[i % len(queries)], k=10, scope=scope)

            direct = p50(recall, n_queries)
            try:
                from agentmem.adapters.langchain import AgentMemRetriever as LangChainRetriever

                lc = LangChainRetriever(memory=mem, k=10, scope=scope)
                rows.append(("LangChain retriever.invoke", p50(lambda i: lc.invoke(queries[i % len(queries)]),
                                                                n_queries), direct))
            except ImportError:
                click.echo("LangChain not installed: skipped", err=True)
            try:
                from agentmem.adapters.llamaindex import AgentMemRetriever as LlamaRetriever

                li = LlamaRetriever(mem, k=10, scope=scope)
                rows.append(("LlamaIndex retriever.retrieve", p50(lambda i: li.retrieve(queries[i % len(queries)]),
                                                                   n_queries), direct))
            except ImportError:
                click.echo("LlamaIndex not installed: skipped", err=True)
            try:
                from agentmem.adapters.langgraph import AgentMemStore

                store = AgentMemStore(mem)
                for j, text in enumerate(texts[:n]):
                    store.put(("u", "notes"), f"k{j}", {"text": text}, index=["text"])
                mem.consolidate()
                wraps = p50(lambda i: mem.recall(queries[i % len(queries)], k=10, scope=scope,
                                                 filters={"_lg_0": "u", "_lg_1": "notes"}), n_queries)
                rows.append(("LangGraph store.search", p50(lambda i: store.search(
                    ("u", "notes"), query=queries[i % len(queries)], limit=10), n_queries), wraps))
            except ImportError:
                click.echo("LangGraph not installed: skipped", err=True)
            remember = p50(lambda i: mem.remember(f"a direct note {i}: {queries[i % len(queries)]}", scope=scope),
                           n_queries)
        try:
            mcp = asyncio.run(_mcp(path, queries, 10))
            rows.append(("MCP recall over stdio", mcp["recall"], direct))
            rows.append(("MCP remember over stdio", mcp["remember"], remember))
        except ImportError:
            click.echo("the MCP SDK is not installed: skipped", err=True)
    click.echo(f"\n{n:,} items, one scope, embedder {embedder}, p50 of {n_queries} calls each (ms); "
               f"Memory.recall p50 {direct:.2f}, Memory.remember p50 {remember:.2f}")
    click.echo(f"{'call':<32} {'adapter':>9} {'direct':>9} {'x':>6}")
    for name, ms, base in rows:
        click.echo(f"{name:<32} {ms:>9.2f} {base:>9.2f} {ms / base:>6.2f}")
    if json_out:
        Path(json_out).write_text(json.dumps({"n": n, "queries": n_queries, "embedder": embedder,
                                              "rows": [{"call": c, "ms": m, "direct_ms": b, "x": m / b}
                                                       for c, m, b in rows]}, indent=2))
