"""``POST /v1/evaluate`` without FastAPI's request machinery, for the requests it answers most.

Measured under load (docs/benchmarks.md, "Throughput"): per decision, the event loop spent about
as long in FastAPI around the route (dependency solving, a second parse of the body, validation)
as in the route itself. This answers only the plain request, one the route would answer with a
decision without a thread: no query string, a JSON body that :class:`JsonBodyCheck` parsed and
passed, a valid ``EvaluateRequest``, and a caller :func:`admitted_at_once` admits. Anything else
(a refusal of any kind, ``?explain``, a token not seen in the last seconds) goes on to the route,
so every refusal keeps its one source and wording, and the OpenAPI entry stays the route's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from policygate.api.auth import admitted_at_once, required_scope
from policygate.api.limits import PARSED, content_type
from policygate.api.routes.decisions import EvaluateRequest, answer

PATH = "/v1/evaluate"
SCOPE = required_scope("POST", PATH) or ""  # "decide"
Handler = Callable[[Request, Exception], Awaitable[Response]]


class FastEvaluate:
    """ASGI middleware, inside the body checks and the client address, outside the framework."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.answered = 0  # requests it answered itself (its tests and the benchmark read it)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == PATH
            and not scope.get("root_path")
            and not scope.get("query_string")
        ):
            response = await self._answer(scope)
            if response is not None:
                self.answered += 1
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope) -> Response | None:
        parsed = scope.get(PARSED)
        if not isinstance(parsed, dict) or not _json(content_type(scope)):
            return None
        try:
            body = EvaluateRequest.model_validate(parsed)  # as the route validates it (python mode)
        except ValidationError:
            return None
        app = scope["app"]
        caller = admitted_at_once(app.state.auth, scope["headers"], SCOPE)
        if caller is None:
            return None
        try:
            decision = await app.state.service.evaluate_async(body.evidence, caller=caller.label)
        except Exception as exc:  # the app's own handler answers, as for the route (503, not 500)
            handler = _handler(app.exception_handlers, exc)
            if handler is None:
                raise
            return await handler(Request(scope), exc)
        return answer(decision)


def _json(value: bytes | None) -> bool:
    """``application/json`` (the route accepts a few more; those go on to it)."""
    return value is not None and value.split(b";", 1)[0].strip().lower() == b"application/json"


def _handler(handlers: dict[Any, Handler], exc: Exception) -> Handler | None:
    """The app's exception handler for ``exc``, looked up by class as Starlette looks it up."""
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None
