"""Built-in stores: the SQLite journal, the FAISS/numpy vector cache, the NetworkX knowledge graph."""

from __future__ import annotations

from agentmem.hookspecs import Register, hookimpl
from agentmem.ltm.graph import KnowledgeGraph
from agentmem.ltm.journal import Journal
from agentmem.ltm.vector import VectorIndex


@hookimpl
def register_stores(register: Register) -> None:
    register("sqlite", Journal, kind="journal")
    register("faiss", VectorIndex, kind="vector")
    register("networkx", KnowledgeGraph, kind="graph")
