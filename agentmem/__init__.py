"""agentmem: short- and long-term memory for agents and models.

    import agentmem
    with agentmem.Memory("./memdir") as mem:
        i = mem.remember("Caroline went to the support group on 7 May 2023", scope={"user": "u1"})
        hits = mem.recall("When did Caroline go to the support group?", scope={"user": "u1"})

Heavy libraries (torch, faiss, sentence-transformers) load on first use, not on import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentmem import errors
from agentmem.config import Config
from agentmem.hookspecs import hookimpl
from agentmem.types import Event, Fact, Hit, Item, LogEntry

if TYPE_CHECKING:
    from agentmem.client import AsyncClient, Client
    from agentmem.devices import device
    from agentmem.loop import Agent
    from agentmem.memory import Memory

__version__ = "0.1.0"
__all__ = ["Agent", "AsyncClient", "Client", "Config", "Event", "Fact", "Hit", "Item", "LogEntry", "Memory", "device",
           "errors", "hookimpl"]

_LAZY = {"Memory": "agentmem.memory", "Client": "agentmem.client", "AsyncClient": "agentmem.client",
         "Agent": "agentmem.loop",
         "device": "agentmem.devices"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'agentmem' has no attribute {name!r}")
