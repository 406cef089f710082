"""Signed webhook intake (MLflow registry, Azure Event Grid): answer fast, decide in the background.

These routes authenticate by signature / shared secret, not by API token.
Nothing is evaluated or written for a delivery that fails authentication.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from policygate.config import Settings
from policygate.webhooks.events import (
    EventError,
    eventgrid_events,
    eventgrid_jobs,
    mlflow_example,
    mlflow_job,
    validation_code,
)
from policygate.webhooks.signatures import SignatureError, StaleDelivery, verify
from policygate.webhooks.worker import Job, WebhookWorker

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
log = logging.getLogger(__name__)


def _error(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": error, "message": message})


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EventError(f"body is not valid JSON: {exc}") from None


def _counted(request: Request, source: str, response: JSONResponse) -> JSONResponse:
    """Count refused and ignored deliveries (the worker counts accepted and duplicate ones)."""
    result = (
        "refused" if response.status_code >= 400 else ("ignored" if b'"ignored"' in response.body else None)
    )
    if result is not None:
        request.app.state.service.metrics.webhook_deliveries.labels(source, result).inc()
    return response


async def _accept(worker: WebhookWorker, jobs: list[Job]) -> dict[str, Any]:
    results = [await run_in_threadpool(worker.accept, job) for job in jobs]
    return {
        "status": "accepted" if "accepted" in results else ("duplicate" if results else "ignored"),
        "accepted": results.count("accepted"),
        "duplicates": results.count("duplicate"),
    }


@router.post("/mlflow", status_code=202, responses={200: {}, 400: {}, 401: {}, 503: {}})
async def mlflow_webhook(request: Request) -> JSONResponse:
    """MLflow registry webhook; X-MLflow-Signature verified with POLICYGATE_MLFLOW_WEBHOOK_SECRET."""
    return _counted(request, "mlflow", await _mlflow_delivery(request))


async def _mlflow_delivery(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    if settings.mlflow_webhook_secret is None:
        return _error(
            503, "not_configured", "set POLICYGATE_MLFLOW_WEBHOOK_SECRET to receive MLflow webhooks"
        )
    body = await request.body()
    delivery_id = request.headers.get("x-mlflow-delivery-id")
    try:
        verify(
            settings.mlflow_webhook_secret.get_secret_value(),
            delivery_id,
            request.headers.get("x-mlflow-timestamp"),
            request.headers.get("x-mlflow-signature"),
            body,
        )
        payload = _json(body)
        if await _test_delivery(request.app.state.webhooks, payload):
            log.info("MLflow test delivery %s answered; nothing decided or written back", delivery_id)
            request.app.state.service.metrics.webhook_deliveries.labels("mlflow", "test").inc()
            return JSONResponse(status_code=200, content={"status": "test"})
        job = mlflow_job(
            str(delivery_id), payload, settings.webhook_alias_stages, settings.webhook_default_target
        )
    except SignatureError as exc:
        log.warning("refused MLflow webhook delivery: %s", exc)
        return _error(401, "bad_signature", str(exc))
    except StaleDelivery as exc:
        return _error(400, "stale_delivery", str(exc))
    except EventError as exc:
        return _error(400, "bad_event", str(exc))
    if job is None:
        return JSONResponse(status_code=200, content={"status": "ignored"})
    result = await _accept(request.app.state.webhooks, [job])
    return JSONResponse(status_code=200 if result["status"] == "duplicate" else 202, content=result)


async def _test_delivery(worker: WebhookWorker, payload: Any) -> bool:
    """MLflow's ``test_webhook``: its example data, about a model the registry does not hold (when the
    registry cannot say, the delivery is taken as real and decided: never a real event skipped)."""
    if not mlflow_example(payload) or worker.writeback is None:
        return False
    return await run_in_threadpool(worker.writeback.registered, str(payload["data"].get("name"))) is False


def _eventgrid_authorised(request: Request, settings: Settings) -> bool:
    if settings.eventgrid_secret is None:
        return False
    given = request.query_params.get("code") or request.headers.get("x-policygate-secret") or ""
    return hmac.compare_digest(given.encode(), settings.eventgrid_secret.get_secret_value().encode())


@router.options("/azure-eventgrid")
async def eventgrid_handshake(request: Request) -> Response:
    """CloudEvents abuse-protection handshake (WebHook-Request-Origin -> WebHook-Allowed-Origin)."""
    if not _eventgrid_authorised(request, request.app.state.settings):
        return _error(
            401, "unauthorised", "missing or wrong Event Grid secret (?code= or X-Policygate-Secret)"
        )
    origin = request.headers.get("webhook-request-origin", "")
    return Response(status_code=200, headers={"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*"})


@router.post("/azure-eventgrid", status_code=202, responses={200: {}, 400: {}, 401: {}, 503: {}})
async def eventgrid_webhook(request: Request) -> JSONResponse:
    """Azure ML events via Event Grid (Event Grid or CloudEvents schema), with a shared secret."""
    return _counted(request, "eventgrid", await _eventgrid_delivery(request))


async def _eventgrid_delivery(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    if settings.eventgrid_secret is None:
        return _error(
            503, "not_configured", "set POLICYGATE_EVENTGRID_SECRET to receive Event Grid deliveries"
        )
    if not _eventgrid_authorised(request, settings):
        log.warning("refused Event Grid delivery: bad or missing secret")
        return _error(
            401, "unauthorised", "missing or wrong Event Grid secret (?code= or X-Policygate-Secret)"
        )
    try:
        events = eventgrid_events(_json(await request.body()))
        code = validation_code(events)
        if code is not None:
            return JSONResponse(status_code=200, content={"validationResponse": code})
        jobs = eventgrid_jobs(
            events, settings.eventgrid_registered_target, settings.eventgrid_deployed_target
        )
    except EventError as exc:
        return _error(400, "bad_event", str(exc))
    if not jobs:
        return JSONResponse(status_code=200, content={"status": "ignored"})
    result = await _accept(request.app.state.webhooks, jobs)
    return JSONResponse(status_code=200 if result["status"] == "duplicate" else 202, content=result)
