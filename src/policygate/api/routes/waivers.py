"""Waivers over HTTP: grant, list, revoke. Every change is a record in the decision log's chain
and is pushed to OPA before the answer."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel

from policygate.api.deps import RuntimeDep, Service
from policygate.engine.errors import EngineError
from policygate.policy import waiver_sync, waivers
from policygate.runtime import Runtime

router = APIRouter(prefix="/v1", tags=["waivers"])
log = logging.getLogger(__name__)


class WaiverList(BaseModel):
    waivers: list[waivers.WaiverView]


def _caller(request: Request) -> str | None:
    principal = getattr(request.state, "principal", None)
    label = getattr(principal, "label", None)
    return label if isinstance(label, str) and label != "anonymous" else None


def _push(runtime: Runtime) -> None:
    """Push the active set now. The change is already recorded (durable): if OPA does not take it,
    the periodic refresh retries, so the caller gets its answer rather than an error to retry on."""
    try:
        waiver_sync.publish(runtime.engine, runtime.log, runtime.waivers)
    except EngineError as exc:
        log.warning(
            "waiver change recorded; OPA did not take it yet (retried every %.0f s): %s",
            waivers.REFRESH_S,
            exc.message,
        )


@router.post("/waivers", response_model=waivers.WaiverView, status_code=201)
def add_waiver(
    body: waivers.WaiverRequest, service: Service, runtime: RuntimeDep, request: Request
) -> waivers.WaiverView:
    """Grant a time-bound waiver (expiry required, at most 365 days ahead)."""
    if _caller(request):
        body = body.model_copy(update={"created_by": _caller(request)})
    try:
        waiver = waivers.new_waiver(body, known_rules=service.rule_ids)
    except waivers.WaiverError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    waivers.record_add(service.log, waiver)
    _push(runtime)
    return waivers.WaiverView(**waiver.model_dump(), status="active")


@router.get("/waivers", response_model=WaiverList)
def list_waivers(
    service: Service,
    all_: Annotated[bool, Query(alias="all", description="Include expired and revoked waivers.")] = False,
) -> WaiverList:
    """Active waivers (``?all=true``: every waiver ever granted, with its status)."""
    state = waivers.load_state(service.log)
    return WaiverList(waivers=state.views(datetime.now(UTC), include_inactive=all_))


@router.delete("/waivers/{waiver_id}", response_model=waivers.WaiverView)
def revoke_waiver(
    waiver_id: str,
    service: Service,
    runtime: RuntimeDep,
    request: Request,
    reason: Annotated[str | None, Query(max_length=1000)] = None,
) -> waivers.WaiverView:
    """Revoke a waiver now; the revocation is recorded and OPA stops applying it."""
    try:
        view = waivers.revoke(service.log, waiver_id, revoked_by=_caller(request), reason=reason)
    except waivers.WaiverNotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except waivers.WaiverError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    _push(runtime)
    return view
