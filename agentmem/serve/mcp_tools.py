"""The memory as MCP tools (MCP Python SDK 2.x ``MCPServer``), for stdio (``agentmem mcp``) and for
Streamable HTTP (mounted by ``agentmem serve`` at ``/mcp``).

Every tool call is checked the way a REST request is (:func:`agentmem.serve.keys.narrowed`): the
caller's key comes from ``access(ctx)`` (over HTTP the request's bearer key; over stdio one built
from the command line's scope), a call may narrow its scope and never widen it, and an item outside
it is refused. Errors come back as tool errors whose text starts with the ``agentmem.errors`` class
(``ScopeDeniedError: ...``). A write returns only after its journal commit, as ``Memory.remember``.
Tool descriptions are written for a model to read: what each returns and when to use it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from agentmem import errors
from agentmem.memory import Memory
from agentmem.serve.keys import ApiKey, narrowed
from agentmem.serve.keys import reachable as reachable_item
from agentmem.serve.models import Entities, FactOut, Facts, Hits, Ids, ItemOut, MemoryIn, fact_out, hit_out, item_out

F = TypeVar("F", bound=Callable[..., Any])
Access = Callable[[Context], ApiKey | None]  # the key a call acts with; None: every scope (no keys)
MAX_BATCH = 1_000  # texts of one remember call
MAX_K = 1_000  # hits of one recall
Scope = Annotated[dict[str, str] | None, Field(description="user / agent / session: narrows this connection's "
                                               "scope (default: the connection's own)")]
When = Annotated[float | str | None, Field(description="when it happened: ISO-8601 or unix seconds")]

INSTRUCTIONS = """\
agentmem is this agent's long-term memory: remember facts, preferences and events as short texts,
then recall them by meaning and words later, across sessions. Recall before answering anything that
may depend on what the user said earlier; remember what is worth keeping (one fact per text, in the
user's words, with the date when it matters). Memories are scoped (user / agent / session): calls
act in the scope this connection was given unless they narrow it."""


def _typed_errors(fn: F) -> F:
    """An ``agentmem.errors`` exception becomes a tool error naming its class, so a model (and a
    client) can tell a missing item from a scope it may not reach."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except errors.AgentMemError as exc:
            raise ToolError(f"{type(exc).__name__}: {exc}") from exc

    return run  # type: ignore[return-value]


def build(memory: Memory, access: Access, name: str = "agentmem") -> MCPServer:
    """An MCP server whose tools use ``memory`` (opened for writing by the caller, who closes it)."""
    server = MCPServer(name, instructions=INSTRUCTIONS, version="1", log_level="WARNING")

    def reachable(item_id: int, key: ApiKey | None) -> Any:
        return reachable_item(memory, item_id, key)

    @server.tool()
    @_typed_errors
    def remember(ctx: Context,
                 text: Annotated[str | None, Field(description="one memory: a short, self-contained statement")] = None,
                 items: Annotated[list[MemoryIn] | None, Field(description="or many at once: {text, metadata?, "
                                                               "scope?, time?} each (at most 1,000)")] = None,
                 metadata: Annotated[dict[str, Any] | None, Field(description="a JSON object kept with it")] = None,
                 scope: Scope = None, time: When = None) -> Ids:
        """Store a memory (or several) durably and return the new ids. Use it for facts,
        preferences, decisions and events worth recalling later; near-duplicates are merged when
        the memory consolidates, so remembering a fact again is harmless."""
        key = access(ctx)
        if (text is None) == (items is None):
            raise errors.InvalidInputError("pass either 'text' (one memory) or 'items' (a list of them)")
        batch = items if items is not None else [MemoryIn(text=text or "", metadata=metadata, scope=scope, time=time,
                                                           embedding=None)]
        if not batch:
            raise errors.InvalidInputError("'items' is empty: nothing to remember")
        if len(batch) > MAX_BATCH:
            raise errors.RequestTooLargeError(f"{len(batch)} items in one call (max {MAX_BATCH}); split it")
        given = [it.embedding for it in batch if it.embedding is not None]
        if given and len(given) != len(batch):
            raise errors.InvalidInputError("give an embedding with every item or with none")
        scopes = [narrowed(key, it.scope, write=True) for it in batch]  # every item checked before any is stored
        if all(where == scopes[0] for where in scopes):  # the usual case: one batch, one transaction
            return Ids(ids=memory.remember_many([it.text for it in batch], [it.metadata for it in batch], scopes[0],
                                                times=[it.time for it in batch], embeddings=given or None,
                                                progress=False))
        return Ids(ids=[memory.remember(it.text, it.metadata, where, time=it.time, embedding=it.embedding)
                        for it, where in zip(batch, scopes, strict=True)])

    @server.tool()
    @_typed_errors
    def recall(ctx: Context, query: Annotated[str, Field(description="what to look for, in plain words")],
               k: Annotated[int, Field(description="how many memories to return (1 to 1,000)")] = 10,
               scope: Scope = None,
               filters: Annotated[dict[str, Any] | None, Field(description='metadata equalities, e.g. {"topic": '
                                                               '"travel"}')] = None,
               since: When = None, until: When = None) -> Hits:
        """The memories most relevant to ``query``, best first, each with its id, text, score,
        metadata, scope, event time and the evidence that found it (vector, lexical, time, graph).
        Use it before answering questions about the user or the past."""
        key = access(ctx)
        if k > MAX_K:
            raise errors.RequestTooLargeError(f"k={k} is over this server's bound ({MAX_K})")
        hits = memory.recall(query, k, narrowed(key, scope), filters, since, until)
        return Hits(hits=[hit_out(h) for h in hits])

    @server.tool()
    @_typed_errors
    def get(ctx: Context, id: Annotated[int, Field(description="an id returned by remember or recall")]) -> ItemOut:
        """One memory exactly as it was remembered (text, metadata, scope, times, tier; an item merged
        into a duplicate names it in merged_into)."""
        return item_out(reachable(id, access(ctx)))

    @server.tool()
    @_typed_errors
    def forget(ctx: Context, ids: Annotated[list[int], Field(description="ids to forget; all or none")]) -> Ids:
        """Forget memories everywhere (text, vectors, graph links), with the duplicates merged into
        them; returns every id removed. All or none: an unknown id forgets nothing. Use it when the
        user asks to forget something or a memory is wrong."""
        key = access(ctx)
        for item_id in ids:
            narrowed(key, reachable(item_id, key).scope, write=True)
        return Ids(ids=memory.forget_many(ids))

    @server.tool()
    @_typed_errors
    def consolidate(ctx: Context) -> dict[str, Any]:
        """Move short-term memory into long-term memory now (merge duplicates, index, extract facts);
        counts of what happened. Memory consolidates by itself as it fills: call this only before a
        long pause or when asked."""
        key = access(ctx)
        if key is not None and key.read_only:
            raise errors.ScopeDeniedError("this connection is read-only")
        report = memory.consolidate()
        return {"promoted": len(report.promoted), "merged": len(report.merged), "facts": report.facts,
                "forgotten": len(report.forgotten), "seconds": report.seconds}

    @server.tool()
    @_typed_errors
    def add_fact(ctx: Context, subject: str, relation: str, object: str,
                 item: Annotated[int | None, Field(description="the memory it comes from (its scope applies)")] = None,
                 scope: Scope = None) -> FactOut:
        """Add a (subject, relation, object) fact to the knowledge graph, e.g. ("Caroline",
        "attended", "support group"); link it to the memory it came from with ``item``."""
        key = access(ctx)
        if item is not None:  # the fact takes its item's scope
            narrowed(key, reachable(item, key).scope, write=True)
            where = None
        else:
            where = narrowed(key, scope, write=True)
        return fact_out(memory.graph.add_fact(subject, relation, object, item=item, scope=where))

    @server.tool()
    @_typed_errors
    def facts(ctx: Context, entity: Annotated[str | None, Field(description="facts about this entity")] = None,
              relation: str | None = None, scope: Scope = None) -> Facts:
        """Facts of the knowledge graph about ``entity`` (as subject or object; names match whatever
        their case and punctuation), optionally of one ``relation``."""
        found = memory.graph.facts(entity, relation, scope=narrowed(access(ctx), scope))
        return Facts(facts=[fact_out(f) for f in found])

    @server.tool()
    @_typed_errors
    def neighbours(ctx: Context, entity: str, depth: Annotated[int, Field(ge=1, le=5)] = 1,
                   scope: Scope = None) -> Entities:
        """Entities linked to ``entity`` in the knowledge graph within ``depth`` hops (1 to 5)."""
        return Entities(entities=memory.graph.neighbours(entity, depth, scope=narrowed(access(ctx), scope)))

    @server.tool()
    @_typed_errors
    def stats(ctx: Context) -> dict[str, Any]:
        """Counts and sizes of every store of the memory (it covers every scope: an admin key, or a
        stdio server started without a scope)."""
        key = access(ctx)
        if key is not None and not key.admin:
            raise errors.ScopeDeniedError("stats cover every scope: they need an admin key or a server without scope")
        return memory.stats()

    @server.resource("graph://{entity}", mime_type="application/json",
                     description="the knowledge graph around an entity: its facts and its neighbours")
    def graph(entity: str, ctx: Context) -> str:
        key = access(ctx)
        where = narrowed(key, None)
        around = memory.graph.facts(entity, scope=where)
        return json.dumps({"entity": entity, "facts": [fact_out(f).model_dump() for f in around],
                           "neighbours": memory.graph.neighbours(entity, 1, scope=where)})

    return server
