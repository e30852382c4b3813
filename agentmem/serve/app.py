"""The REST API of ``agentmem serve`` (FastAPI): the ``Memory`` API over HTTP, under ``/v1``.

Every route checks the request's key the same way (:func:`agentmem.serve.keys.narrowed`): a request
may narrow its key's scope, never widen it (403, never an empty answer that hides the attempt); an
admin key reaches every scope; a server whose memory has no key yet (it listens on loopback only)
serves every scope. Writes answer 200 only after the journal commit, as ``Memory.remember`` returns.
Every ``agentmem.errors`` class maps to one status (:data:`STATUS`) with a JSON body
``{"error": {"type", "message"}}``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field
from starlette.routing import Route

from agentmem import errors, validate
from agentmem.ltm.weights import state_from_bytes
from agentmem.memory import Memory
from agentmem.serve.guard import Guard, error_body
from agentmem.serve.keys import ApiKey, KeyStore, narrowed, reaches
from agentmem.serve.keys import reachable as reachable_item
from agentmem.serve.metrics import Metrics
from agentmem.serve.models import (
    Entities,
    FactIn,
    FactOut,
    Facts,
    History,
    Hits,
    Ids,
    ItemOut,
    ItemsOut,
    LogEntryOut,
    MemoriesIn,
    MemoryIn,
    Neighbours,
    RecallIn,
    SearchIn,
    fact_out,
    hit_out,
    item_out,
)
from agentmem.types import Item

INSPECTOR = Path(__file__).with_name("inspector.html")
MAX_BODY = 16 << 20  # bytes of one request body
MAX_BATCH = 1_000  # items of one POST /v1/memories
MAX_K = 1_000  # hits of one recall

# most specific first: the first class an error is an instance of gives its status
STATUS: list[tuple[type[errors.AgentMemError], int]] = [
    (errors.AuthError, 401), (errors.ScopeDeniedError, 403), (errors.ReadOnlyError, 403),
    (errors.RequestTooLargeError, 413), (errors.NotFoundError, 404), (errors.InvalidInputError, 422),
    (errors.ModelError, 422), (errors.EmbedderMismatchError, 409), (errors.MemoryLockedError, 503),
    (errors.MemoryClosedError, 503), (errors.SchemaError, 500), (errors.CorruptionError, 500),
    (errors.MemoryPathError, 500), (errors.PluginError, 500), (errors.AgentMemError, 500),
]


def status_of(exc: errors.AgentMemError) -> int:
    return next(code for cls, code in STATUS if isinstance(exc, cls))


class ErrorDetail(BaseModel):
    type: str = Field(description="the agentmem.errors class")
    message: str


class ErrorOut(BaseModel):
    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": what} for code, what in (
        (401, "no API key, an unknown one or a revoked one"), (403, "outside the key's scope, or a read-only key"),
        (404, "no such item, fact or weights"), (409, "the memory was built with another embedder"),
        (413, "request body or batch over the server's bounds"), (422, "invalid input"),
        (500, "stored data failed its integrity check"), (503, "the memory is closed or locked"))}


def create_app(memory: Memory, host: str = "127.0.0.1") -> FastAPI:
    """The app serving ``memory`` (opened for writing by the caller, who closes it) on ``host``."""
    keys = KeyStore(memory.journal)
    metrics = Metrics()
    page = INSPECTOR.read_text(encoding="utf-8")  # read once: it ships with the package
    mcp_routes, lifespan = _mcp(memory, keys, host)
    app = FastAPI(title="agentmem", version="1", description=__doc__, responses=ERRORS, lifespan=lifespan)
    app.router.routes.extend(mcp_routes)
    app.add_middleware(Guard, limit=MAX_BODY, metrics=metrics)

    @app.exception_handler(errors.AgentMemError)
    async def agentmem_error(request: Request, exc: errors.AgentMemError) -> JSONResponse:
        return JSONResponse(error_body(type(exc).__name__, str(exc)), status_code=status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        where = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        return JSONResponse(error_body("InvalidInputError", f"the request does not match the schema: {where}"),
                            status_code=422)

    def key(request: Request) -> ApiKey | None:
        """The request's key; None on a server whose memory has no key yet (loopback only)."""
        return keys.from_header(request.headers.get("authorization", ""))

    Key = Depends(key)

    @app.get("/metrics", response_class=PlainTextResponse)
    def prometheus(k: ApiKey | None = Key) -> PlainTextResponse:
        """Prometheus metrics: requests by route and status, latency histograms, memory sizes (an
        admin key on a server with keys)."""
        if k is not None and not k.admin:
            raise errors.ScopeDeniedError("metrics cover every scope: they need an admin key")
        sizes = {**memory.journal.counts(), "vectors": len(memory.vector), "stm_items": len(memory.stm)}
        return PlainTextResponse(metrics.render(sizes), media_type="text/plain; version=0.0.4")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def inspector() -> HTMLResponse:
        """The web inspector: recall with scores and evidence, a scope's items on a timeline, the
        knowledge graph around an entity, store statistics. One page, no outside resources; it calls
        this API with the key typed into it."""
        return HTMLResponse(page)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the memory is open."""
        return {"status": "ok", "path": str(memory.path)}

    @app.post("/v1/memories", response_model=Ids)
    def remember(body: MemoriesIn, k: ApiKey | None = Key) -> Ids:
        """Remember one text or a batch (``items``); the ids, once the journal has committed them."""
        if (body.items is None) == (body.text is None):
            raise errors.InvalidInputError("send either 'text' (one memory) or 'items' (a list of them)")
        items = body.items if body.items is not None else [MemoryIn(**body.model_dump(exclude={"items"}))]
        if len(items) > MAX_BATCH:
            raise errors.RequestTooLargeError(f"{len(items)} items in one request (max {MAX_BATCH}); split it")
        groups: list[tuple[dict[str, str], bool, list[MemoryIn]]] = []  # runs of one scope, vectors or not
        for item in items:
            scope = narrowed(k, item.scope, write=True)
            if groups and groups[-1][0] == scope and groups[-1][1] == (item.embedding is not None):
                groups[-1][2].append(item)
            else:
                groups.append((scope, item.embedding is not None, [item]))
        for item in items:  # every item checked before any is stored, as Memory.remember_many does
            validate.text(item.text)
            validate.metadata(item.metadata)
            validate.when(item.time)
            if item.embedding is not None:
                validate.vectors([item.embedding], 1, memory.dim)
        ids: list[int] = []  # a batch of several scopes is one transaction per run of one scope
        for scope, given, run in groups:
            ids += memory.remember_many([i.text for i in run], [i.metadata for i in run], scope,
                                        times=[i.time for i in run],
                                        embeddings=[i.embedding for i in run] if given else None, progress=False)
        return Ids(ids=ids)

    @app.post("/v1/recall", response_model=Hits)
    def recall(body: RecallIn, k: ApiKey | None = Key) -> Hits:
        """The ``k`` most relevant memories inside the scope, fused from every kind of evidence."""
        if body.k > MAX_K:
            raise errors.InvalidInputError(f"k={body.k} is over this server's bound ({MAX_K})")
        scope = narrowed(k, body.scope)
        hits = memory.recall(body.query, body.k, scope, body.filters, body.since, body.until,
                             embedding=body.embedding)
        return Hits(hits=[hit_out(h) for h in hits])

    @app.post("/v1/search", response_model=Neighbours)
    def search_vectors(body: SearchIn, k: ApiKey | None = Key) -> Neighbours:
        """The ``k`` items nearest each vector by cosine inside the scope (no text, no fusion), as
        ``Memory.search_vectors``: what a vector store or a model plugin needs."""
        if body.k > MAX_K or len(body.vectors) > MAX_BATCH:
            raise errors.RequestTooLargeError(f"at most {MAX_BATCH} vectors and k={MAX_K} per request")
        scope = narrowed(k, body.scope)
        found = memory.search_vectors(body.vectors, body.k, scope, body.filters, body.since, body.until)
        return Neighbours(results=[[(int(i), float(c)) for i, c in row] for row in found])

    @app.post("/v1/memories/get", response_model=ItemsOut)
    def get_many(body: Ids, k: ApiKey | None = Key) -> ItemsOut:
        """The items stored under ``ids`` that exist and that the key reaches (others are left out, as
        ``Memory.get_many`` leaves out the missing)."""
        if len(body.ids) > MAX_BATCH:
            raise errors.RequestTooLargeError(f"{len(body.ids)} ids in one request (max {MAX_BATCH}); split it")
        found = memory.get_many(body.ids)
        return ItemsOut(items=[item_out(found[i]) for i in body.ids if i in found and reaches(k, found[i].scope)])

    def reachable(item_id: int, k: ApiKey | None) -> Item:
        return reachable_item(memory, item_id, k)

    @app.get("/v1/memories", response_model=ItemsOut)
    def items(limit: int = 100, before: int | None = None, user: str | None = None, agent: str | None = None,
              session: str | None = None, filters: str | None = None, k: ApiKey | None = Key) -> ItemsOut:
        """The memories of a scope, newest first (``limit`` of them, ids below ``before``; ``filters``: a
        JSON object of metadata equalities)."""
        scope = narrowed(k, _scope(user, agent, session))
        return ItemsOut(items=[item_out(i) for i in memory.items(scope, limit, before,
                                                                 _json_object(filters, "filters"))])

    @app.get("/v1/memories/{item_id}", response_model=ItemOut)
    def get(item_id: int, k: ApiKey | None = Key) -> ItemOut:
        """One memory as it was remembered (an item merged into another names it in ``merged_into``)."""
        return item_out(reachable(item_id, k))

    @app.delete("/v1/memories/{item_id}", response_model=Ids)
    def forget(item_id: int, k: ApiKey | None = Key) -> Ids:
        """Forget a memory everywhere, with the items merged into it; every id removed."""
        narrowed(k, reachable(item_id, k).scope, write=True)
        return Ids(ids=memory.forget(item_id))

    @app.post("/v1/memories/forget", response_model=Ids)
    def forget_many(body: Ids, k: ApiKey | None = Key) -> Ids:
        """Forget several memories, all or none (as ``Memory.forget_many``); every id removed."""
        if len(body.ids) > MAX_BATCH:
            raise errors.RequestTooLargeError(f"{len(body.ids)} ids in one request (max {MAX_BATCH}); split it")
        missing = []
        for item_id in body.ids:
            try:
                narrowed(k, reachable(item_id, k).scope, write=True)
            except errors.NotFoundError:
                missing.append(item_id)
        if missing:
            raise errors.NotFoundError(f"no item{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))}; "
                                       "nothing was forgotten: pass only ids that exist")
        return Ids(ids=memory.forget_many(body.ids))

    @app.post("/v1/consolidate")
    def consolidate(k: ApiKey | None = Key) -> dict[str, Any]:
        """Move short-term memory into long-term memory now; counts of what happened."""
        if k is not None and k.read_only:
            raise errors.ScopeDeniedError(f"API key {k.id} is read-only")
        report = memory.consolidate()
        return {"promoted": len(report.promoted), "merged": len(report.merged), "facts": report.facts,
                "forgotten": len(report.forgotten), "seconds": report.seconds}

    @app.get("/v1/stats")
    def stats(k: ApiKey | None = Key) -> dict[str, Any]:
        """Counts and sizes of every store (of the whole memory: an admin key's view)."""
        if k is not None and not k.admin:
            raise errors.ScopeDeniedError("stats cover every scope: they need an admin key")
        return memory.stats()

    @app.get("/v1/history", response_model=History)
    def history(limit: int = 50, before: int | None = None, k: ApiKey | None = Key) -> History:
        """Consolidations and forgets as the journal logged them, newest first (admin keys: they cover
        every scope)."""
        if k is not None and not k.admin:
            raise errors.ScopeDeniedError("the history covers every scope: it needs an admin key")
        return History(entries=[LogEntryOut(**dataclasses.asdict(e)) for e in memory.history(limit, before)])

    @app.post("/v1/graph/facts", response_model=FactOut)
    def add_fact(body: FactIn, k: ApiKey | None = Key) -> FactOut:
        """Add a fact (subject, relation, object), linked to an item or in a scope."""
        if body.item is not None:
            narrowed(k, reachable(body.item, k).scope, write=True)
            scope = None
        else:
            scope = narrowed(k, body.scope, write=True)
        return fact_out(memory.graph.add_fact(body.subject, body.relation, body.object, body.item, scope))

    @app.get("/v1/graph/facts", response_model=Facts)
    def facts(entity: str | None = None, relation: str | None = None, user: str | None = None,
              agent: str | None = None, session: str | None = None, k: ApiKey | None = Key) -> Facts:
        """Facts about ``entity`` (every fact of the scope when omitted), optionally of one relation."""
        scope = narrowed(k, _scope(user, agent, session))
        return Facts(facts=[fact_out(f) for f in memory.graph.facts(entity, relation, scope)])

    @app.get("/v1/graph/neighbours", response_model=Entities)
    def neighbours(entity: str, depth: int = 1, user: str | None = None, agent: str | None = None,
                   session: str | None = None, k: ApiKey | None = Key) -> Entities:
        """Entities within ``depth`` hops of ``entity``, nearest first."""
        if not 1 <= depth <= 5:
            raise errors.InvalidInputError("depth must be between 1 and 5")
        scope = narrowed(k, _scope(user, agent, session))
        return Entities(entities=memory.graph.neighbours(entity, depth, scope))

    @app.get("/v1/graph/path", response_model=Entities)
    def path(source: str, target: str, user: str | None = None, agent: str | None = None,
             session: str | None = None, k: ApiKey | None = Key) -> Entities:
        """The shortest chain of entities from ``source`` to ``target`` ([] when none)."""
        scope = narrowed(k, _scope(user, agent, session))
        return Entities(entities=memory.graph.path(source, target, scope))

    @app.get("/v1/weights")
    def weights(k: ApiKey | None = Key) -> dict[str, Any]:
        """Every weight name with its versions (number, sha256, size, metadata, current)."""
        return {"weights": {name: [_version(v) for v in memory.weights.versions(name)]
                            for name in memory.weights.names()}}

    @app.get("/v1/weights/{name}/file", response_class=FileResponse,
             responses={200: {"content": {"application/octet-stream": {}}, "description": "safetensors"}})
    def weights_file(name: str, version: int | None = None, k: ApiKey | None = Key) -> FileResponse:
        """One version's safetensors file (the current one by default), checked against its sha256
        first; the sha256 and version come back in ``X-Sha256`` and ``X-Version``."""
        path, sha, number = memory.weights.file(name, version)
        return FileResponse(path, media_type="application/octet-stream", filename=f"{name}-v{number}.safetensors",
                            headers={"X-Sha256": sha, "X-Version": str(number)})

    @app.post("/v1/weights/{name}")
    async def upload_weights(name: str, request: Request, metadata: str | None = None,
                             k: ApiKey | None = Key) -> dict[str, Any]:
        """Store a safetensors file (the request body) as the next version of ``name`` (admin keys:
        weights are shared by every scope). ``metadata``: a JSON object kept with the version."""
        if k is not None and not k.admin:
            raise errors.ScopeDeniedError("weights are shared by every scope: uploading needs an admin key")
        state, meta = state_from_bytes(await request.body()), _json_object(metadata)
        import anyio.to_thread

        number = await anyio.to_thread.run_sync(lambda: memory.weights.save(name, state, meta))
        return {"name": name, "version": number}

    return app


def _mcp(memory: Memory, keys: KeyStore, host: str) -> tuple[list[Any], Any]:
    """The MCP tools over Streamable HTTP at ``/mcp`` (:mod:`agentmem.serve.mcp_tools`; the same
    bearer keys and scope rules as the REST routes) and the lifespan that runs their session manager;
    nothing when the ``mcp`` extra is not installed."""
    try:
        from agentmem.serve.mcp_tools import build
    except ImportError:
        return [], None
    server = build(memory, lambda ctx: keys.from_header((ctx.headers or {}).get("authorization", "")))
    # stateless, JSON answers: any node can take any request, and no SSE framing per call
    routes = server.streamable_http_app(streamable_http_path="/mcp", stateless_http=True, json_response=True,
                                        host=host).routes
    (route,) = [r for r in routes if isinstance(r, Route) and r.path == "/mcp"]
    inner = route.app

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        """No valid key, no MCP session (401 as on every route); each tool call then checks its scope."""
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        try:
            keys.from_header(header)
        except errors.AuthError as exc:
            await JSONResponse(error_body("AuthError", str(exc)), status_code=401)(scope, receive, send)
            return
        await inner(scope, receive, send)

    route.app = guarded

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with server.session_manager.run():
            yield

    return list(routes), lifespan


def _version(v: Any) -> dict[str, Any]:
    return {"version": v.version, "sha256": v.sha256, "size": v.size, "metadata": v.metadata,
            "created_at": v.created_at, "current": v.current}


def _json_object(text: str | None, what: str = "metadata") -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise errors.InvalidInputError(f"{what} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise errors.InvalidInputError(f"{what} must be a JSON object")
    return value


def _scope(user: str | None, agent: str | None, session: str | None) -> dict[str, str] | None:
    """A scope from query parameters; None when none is given (the key's scope applies)."""
    scope = {name: v for name, v in (("user", user), ("agent", agent), ("session", session)) if v is not None}
    return scope or None
