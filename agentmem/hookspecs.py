"""Every hook agentmem calls, with its contract. Plugins implement these with ``@agentmem.hookimpl``.

Registration hooks receive a ``register`` callback and call it once per thing they provide; two
plugins registering the same name is a start-up error naming both. Lifecycle hooks let plugins change
behaviour; each says whether the first non-None result wins (``firstresult``) or all results are used.
Hooks are always called with keyword arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

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
    """Provide model families: ``register(name, factory, kinds=(...))``.

    ``factory(spec: dict) -> torch.nn.Module`` builds a model for a task's ``spec``; ``spec["kind"]``
    says what the task needs and the task's module documents the interface the model must offer:
    ``"classifier"`` (``{"input": "image", "shape": [C, H, W], "classes": K}``: ``features(x)``,
    ``head``, ``feature_dim``), ``"seq2seq"`` (``src_vocab``, ``tgt_vocab``, ``pad``, ``max_len``:
    ``encode``, ``decode``, ``generator``, ``pool``) and ``"recommender"`` (``items``, ``max_len``:
    ``forward(seq)``, ``item_emb``). ``spec["quick"]`` asks for a tiny model, ``spec["hparams"]`` holds
    size overrides. The factory raises ``agentmem.errors.InvalidInputError`` for a spec it cannot
    serve, naming what it does serve. ``kinds`` lists the spec kinds served (informative).
    """


@hookspec
def register_tasks(register: Register) -> None:
    """Provide tasks (classification, translation, ...): ``register(name, factory, input=...)``.

    ``factory()`` returns an object with ``run(*, path, model, dataset, options) -> dict`` and
    ``evaluate(*, path, model, dataset, options, version=None) -> dict``. ``path`` is the run's memory
    directory (the task opens it, e.g. with :func:`agentmem.training.feature_memory`, since the vector
    dimension depends on the model), ``model`` and ``dataset`` are registered names, ``options`` is an
    :class:`agentmem.training.RunOptions`. ``run`` trains, evaluates, saves the checkpoint in the weight
    memory and returns ``{"task", "model", "dataset", "metrics", "train_s", "weights": {"name",
    "version"}, ...}`` (plus ``"plain_metrics"`` when ``options.memory``); ``evaluate`` reloads that
    checkpoint and returns the same metrics. ``settings=("hparams", ...)`` names the keys of
    ``options.extra`` (``agentmem run --set KEY=VALUE``) the task reads; any other key is refused
    before the task runs (a task that declares none accepts ``hparams`` only).
    """


@hookspec
def register_datasets(register: Register) -> None:
    """Provide named datasets: ``register(name, loader, task=...)``; ``loader(quick=False, seed=0)``
    returns the data the task ``task`` documents, or raises ``agentmem.errors.NotFoundError`` saying how
    to obtain the files."""


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
    merged into it during consolidation. Asked for the same statement in the same scope
    (:mod:`agentmem.statement`) and for the nearest neighbour with similarity >=
    ``Config.merge_threshold``. First non-None result wins; the built-in merges only the same statement
    with the same metadata and time. A merged item keeps its own text, metadata and times, readable
    by its id (``Memory.get``), but recall returns the group once, under ``existing``.
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
