"""The server's outermost ASGI middleware: body bounds and per-route metrics."""

from __future__ import annotations

import time
from typing import Any

from fastapi.responses import JSONResponse

from agentmem.serve.metrics import Metrics


def error_body(kind: str, message: str) -> dict[str, Any]:
    """The JSON body of every error answer."""
    return {"error": {"type": kind, "message": message}}


class Guard:
    """ASGI middleware (no per-request Request objects, unlike FastAPI's ``@app.middleware``): bounds
    the body — a Content-Length over ``limit`` is answered 413 before anything is read, a chunked body
    is read up to ``limit`` here and handed on whole — and records each request in ``metrics`` by its
    route template and status."""

    def __init__(self, app: Any, limit: int, metrics: Metrics) -> None:
        self.app, self.limit, self.metrics = app, limit, metrics

    async def _too_large(self, scope: Any, receive: Any, send: Any) -> None:
        answer = JSONResponse(error_body("RequestTooLargeError", f"request body over {self.limit} bytes; "
                                         "send fewer items per request"), status_code=413)
        await answer(scope, receive, send)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await self._too_large(scope, receive, send)
            return
        if length is None and scope.get("method") not in ("GET", "HEAD", "DELETE"):
            body, more = b"", True
            while more:
                message = await receive()
                if message["type"] != "http.request":  # the client went away
                    return
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > self.limit:
                    await self._too_large(scope, receive, send)
                    return
            receive = _replay(body, receive)
        start, status = time.perf_counter(), 500

        async def sent(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")  # the template: bounded labels
            self.metrics.observe(route, scope.get("method", ""), status, time.perf_counter() - start)


def _replay(body: bytes, receive: Any) -> Any:
    """A ``receive`` that hands ``body`` on in one message, then defers to the real one."""
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
