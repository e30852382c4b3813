"""The integration examples run as a user would run them (a child process, offline) and print what
they promise: an MCP client session over stdio, a LangGraph agent that recalls through agentmem's
store, a LlamaIndex retriever query."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "AGENTMEM_LOAD_PLUGINS": "", "PYTHONPATH": str(ROOT)}


def run(example: str, tmp_path: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "examples" / example), *args], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_mcp_session_example(tmp_path: Path) -> None:
    pytest.importorskip("mcp", reason="the MCP extra: pip install 'agentmem-toolkit[mcp]'")
    out = run("mcp_session.py", tmp_path, str(tmp_path / "memory"))
    assert "tools: remember, recall, get, forget, consolidate, add_fact, facts, neighbours, stats" in out
    assert "recall: #1 Caroline went to the support group on 7 May 2023 (scope {'user': 'demo'})" in out
    assert "facts: [('Caroline', 'attended', 'support group')]" in out
    assert "another user's scope: ScopeDeniedError" in out and "forgot: [1]" in out


def test_the_langgraph_agent_example(tmp_path: Path) -> None:
    pytest.importorskip("langgraph", reason="the LangGraph extra: pip install 'agentmem-toolkit[langgraph]'")
    out = run("langgraph_agent.py", tmp_path)
    last = out.split("user: What is my locker number at the gym?", 1)[1]
    assert "My locker at the gym is number 41." in last.splitlines()[1]  # recalled through the store
    assert "agent: Your locker is number 41." in last


def test_the_llamaindex_example(tmp_path: Path) -> None:
    pytest.importorskip("llama_index.core", reason="the LlamaIndex extra: pip install 'agentmem-toolkit[llamaindex]'")
    out = run("llamaindex_query.py", tmp_path)
    assert "vector retriever: Melanie painted a lake at sunrise last year." in out
    assert "recall retriever: Caroline went to the LGBTQ support group on 7 May 2023." in out
