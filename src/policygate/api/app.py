"""FastAPI factory: the service starts OPA and the log on startup and stops them on shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from policygate import __version__
from policygate.api.limits import BodySizeLimit
from policygate.api.routes import decisions, health, models, policy, waivers, webhooks
from policygate.config import Settings
from policygate.decisions.log import LogError
from policygate.runtime import open_service
from policygate.webhooks.worker import WebhookWorker
from policygate.webhooks.writeback import MlflowWriteBack


def _where(loc: Any) -> str:
    return ".".join(str(p) for p in loc if p != "body") or "body"


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": _where(e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors()]
    first = errors[0] if errors else {"field": "body", "message": "invalid"}
    return JSONResponse(
        status_code=422,
        content={
            "error": "invalid_request",
            "message": f"{first['field']}: {first['message']}",
            "errors": errors,
        },
    )


async def _log_unavailable(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=503, content={"error": "decision_log_unavailable", "message": str(exc)})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with open_service(settings) as service:
            app.state.service = service
            writeback = MlflowWriteBack(settings.mlflow_uri) if settings.mlflow_uri else None
            worker = WebhookWorker(
                service, writeback, enforce=settings.webhook_enforce, maxsize=settings.webhook_queue_size
            )
            app.state.webhooks = worker
            worker.start()
            try:
                yield
            finally:
                worker.stop()

    app = FastAPI(title="policygate", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(LogError, _log_unavailable)
    app.include_router(health.router)
    app.include_router(decisions.router)
    app.include_router(models.router)
    app.include_router(webhooks.router)
    app.include_router(policy.router)
    app.include_router(waivers.router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app
