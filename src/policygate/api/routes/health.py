"""Liveness and readiness: ready means OPA and the decision log both answer."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from policygate.api.deps import Service

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(service: Service) -> JSONResponse:
    checks = {
        "opa": service.engine is not None and service.engine.healthy(),
        "decision_log": service.log.ping(),
    }
    ready = all(checks.values())
    return JSONResponse(status_code=200 if ready else 503, content={"ready": ready, "checks": checks})
