"""FastAPI factory: the lifespan starts the runtime (the log, OPA and every background part) and
stops it on shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from policygate.api.auth import CONSOLE, authenticate
from policygate.api.client_address import ClientAddress
from policygate.api.console import routes as console_routes
from policygate.api.console.pages import STATIC, error_page
from policygate.api.limits import BodySizeLimit, JsonBodyCheck
from policygate.api.openapi import install_openapi
from policygate.api.routes import (
    approvals,
    attestations,
    audit,
    bundles,
    decisions,
    health,
    lifecycle,
    models,
    policy,
    waivers,
    webhooks,
)
from policygate.api.routes import log as log_routes
from policygate.api.routes import register as register_routes
from policygate.api.routes import reports as report_routes
from policygate.api.routes.evaluate_fast import FastEvaluate
from policygate.config import Settings
from policygate.decisions.log import LogError, db_problem
from policygate.runtime.serve import open_server
from policygate.version import __version__

RETRY = {"Retry-After": "5"}


def _where(loc: Any) -> str:
    return ".".join(str(p) for p in loc if p != "body") or "body"


def _console(request: Request) -> bool:
    return request.url.path == CONSOLE or request.url.path.startswith(CONSOLE + "/")


async def _invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": _where(e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors()]
    first = errors[0] if errors else {"field": "body", "message": "invalid"}
    if _console(request):
        return error_page(request, 422, f"{first['field']}: {first['message']}")
    return JSONResponse(
        status_code=422,
        content={
            "error": "invalid_request",
            "message": f"{first['field']}: {first['message']}",
            "errors": errors,
        },
    )


async def _log_unavailable(_: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, SQLAlchemyError):  # a query outside the log's own guard: name it the same way
        message = f"the decision log's database is unavailable: {db_problem(exc)}"
    else:
        message = str(exc)
    return JSONResponse(
        status_code=503, content={"error": "decision_log_unavailable", "message": message}, headers=RETRY
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if _console(request):
        return error_page(request, exc.status_code, str(exc.detail))
    slug = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:  # Starlette names only the first route's methods; list every route's
        headers["Allow"] = ", ".join(sorted(_allowed_methods(request)))
    return JSONResponse(
        status_code=exc.status_code, content={"error": slug, "message": str(exc.detail)}, headers=headers
    )


def _allowed_methods(request: Request) -> set[str]:
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return methods


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """The runtime (every background part, serve's own included) starts and stops here."""
        with open_server(settings) as runtime:
            app.state.runtime = runtime
            app.state.service = runtime.service
            app.state.auth = runtime.authenticator
            app.state.webhooks = runtime.webhooks
            app.state.bundles = runtime.bundles
            app.state.console_chain = runtime.chain
            yield

    app = FastAPI(
        title="policygate", version=__version__, lifespan=lifespan, dependencies=[Depends(authenticate)]
    )
    app.state.settings = settings
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(LogError, _log_unavailable)
    app.add_exception_handler(SQLAlchemyError, _log_unavailable)  # a database outage is 503, never 500
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.include_router(health.router)
    app.include_router(decisions.router)
    app.include_router(models.router)
    app.include_router(webhooks.router)
    app.include_router(approvals.router)
    app.include_router(lifecycle.router)
    app.include_router(policy.router)
    app.include_router(waivers.router)
    app.include_router(audit.router)
    app.include_router(log_routes.router)
    app.include_router(register_routes.router)
    app.include_router(report_routes.router)
    app.include_router(attestations.router)
    app.include_router(bundles.router)
    app.include_router(console_routes.router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="console-static")
    install_openapi(app)
    app.add_middleware(FastEvaluate)  # POST /v1/evaluate's plain case: routes/evaluate_fast.py
    app.add_middleware(ClientAddress)  # the decision log's requested_by, as OPA's (decisions/opa_event.py)
    app.add_middleware(JsonBodyCheck, max_depth=64, timeout_s=settings.body_timeout_s)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)  # outermost: bounds the buffering
    return app
