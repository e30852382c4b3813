"""Every hook agentmem calls, with its contract. Plugins implement these with ``@agentmem.hookimpl``.

Registration hooks receive a ``register`` callback and call it once per thing they provide; two
plugins registering the same name is a start-up error naming both. Lifecycle hooks let plugins change
behaviour; each says whether the first non-None result wins (``firstresult``) or all results are used.
Hooks are always called with keyword arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from agentmem.loop import Agent
    from agentmem.memory import Memory
    from agentmem.types import Event, Fact, Item

hookspec = pluggy.HookspecMarker("agentmem")
hookimpl = pluggy.HookimplMarker("agentmem")

Register = Callable[..., None]


# --- registration -----------------------------------------------------------------------------


@hookspec
def register_embedders(register: Register) -> None:
    """Provide text embedders: ``register(name, factory)``.

    ``factory()`` returns an :class:`agentmem.embedders.Embedder` (``dim`` and ``embed_batch``).
    It is called lazily, the first time a memory asks for that embedder, so heavy imports belong inside.
    """


@hookspec
def register_stores(register: Register) -> None:
    """Provide storage back-ends: ``register(name, factory, kind=...)`` with ``kind`` one of
    ``"journal"``, ``"vector"`` or ``"graph"``.

    ``factory(**kwargs)`` builds the store; the keyword arguments each kind receives are documented on
    the protocols in :mod:`agentmem.ltm`.
    """


@hookspec
def register_models(register: Register) -> None:
    """Provide model families: ``register(name, factory)``.

    ``factory(spec: dict) -> torch.nn.Module`` builds a model for a task's input/output ``spec``
    (e.g. ``{"input": "image", "shape": (1, 28, 28), "classes": 10}``); it raises
    ``agentmem.errors.InvalidInputError`` for a spec it cannot serve.
    """


@hookspec
def register_tasks(register: Register) -> None:
    """Provide tasks (classification, translation, ...): ``register(name, factory)``.

    ``factory()`` returns an object with ``run(memory, model, dataset, options) -> dict`` that trains,
    evaluates and returns metrics.
    """


@hookspec
def register_datasets(register: Register) -> None:
    """Provide named datasets: ``register(name, loader)``; ``loader(**options)`` returns the data a task
    documents, or raises ``agentmem.errors.NotFoundError`` saying how to obtain the files."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``agentmem`` command-line group (``@cli.command()``)."""


# --- lifecycle ----------------------------------------------------------------------------------


@hookspec(firstresult=True)
def score_item(item: Item, novelty: float, now: float) -> float | None:
    """Return an importance score in [0, 1] for an item being consolidated.

    ``novelty`` is 1 - (highest cosine similarity to long-term memory). First non-None result wins;
    the built-in policy (trylast) weighs novelty, recency and use.
    """


@hookspec(firstresult=True)
def should_merge(item: Item, existing: Item, similarity: float) -> bool | None:
    """Decide whether ``item`` duplicates ``existing`` (same scope, cosine ``similarity``) and should be
    merged into it during consolidation. First non-None result wins; the built-in merges identical
    text and similarity >= ``Config.merge_threshold``.
    """


@hookspec
def extract_facts(item: Item) -> list[Fact] | None:
    """Return facts (subject, relation, object) found in an item being consolidated; every plugin's
    facts are added to the knowledge graph, linked to the item. Must work offline."""


@hookspec
def on_consolidate(memory: Memory, items: list[Item]) -> None:
    """Called after ``items`` moved from short- to long-term memory (already durable)."""


@hookspec
def on_event(agent: Agent, event: Event) -> None:
    """Called for every event the agent loop receives, before it is encoded and remembered."""


@hookspec
def recall_candidates(memory: Memory, query: str, scope: dict[str, str], k: int) -> list[int] | None:
    """Return extra candidate item ids, best first, to fuse into a recall (one ranked list per plugin).

    Ids outside ``scope`` are dropped by the caller, so a plugin cannot leak across scopes.
    """
