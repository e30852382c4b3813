"""An MCP client session (the MCP Python SDK's own Client) driving `agentmem mcp` over stdio.

    python examples/mcp_session.py [MEMORY_DIR]

The client spawns the server as a child process, lists its tools, remembers two notes, recalls one,
links a fact and forgets a note; offline, in seconds (the model-free `hash` embedder).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters

import agentmem


async def main(path: Path) -> None:
    server = StdioServerParameters(command=sys.executable, args=["-m", "agentmem", "mcp", str(path), "--user", "demo"])
    async with Client(server) as client:
        tools = await client.list_tools()
        print("tools:", ", ".join(t.name for t in tools.tools))
        first = await client.call_tool("remember", {"text": "Caroline went to the support group on 7 May 2023"})
        await client.call_tool("remember", {"text": "Melanie painted a lake at sunrise"})
        item = first.structured_content["ids"][0]
        hits = await client.call_tool("recall", {"query": "When did Caroline go to the support group?", "k": 1})
        best = hits.structured_content["hits"][0]
        print(f"recall: #{best['id']} {best['text']} (scope {best['scope']})")
        await client.call_tool("add_fact", {"subject": "Caroline", "relation": "attended", "object": "support group",
                                            "item": item})
        facts = await client.call_tool("facts", {"entity": "Caroline"})
        print("facts:", [(f["subject"], f["relation"], f["object"]) for f in facts.structured_content["facts"]])
        denied = await client.call_tool("recall", {"query": "anything", "scope": {"user": "someone else"}})
        print("another user's scope:", denied.content[0].text.split(":", 2)[1].strip())
        gone = await client.call_tool("forget", {"ids": [item]})
        print("forgot:", gone.structured_content["ids"])


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="agentmem-mcp-")) / "memory"
    agentmem.Memory(folder, embedder="hash").close()  # a new memory with the model-free embedder
    asyncio.run(main(folder))
