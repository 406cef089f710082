"""Liveness and readiness: ready means OPA and the decision log both answer (and, with
``serve --watch``, that OPA took the policy files on disk: a refused change is a 503 naming it)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from policygate.api.deps import Service
from policygate.policy.watch import state_of

router = APIRouter(tags=["health"])


# Longer than this without an OPA that restarting brings back: the process is not healthy, so an
# orchestrator should restart it (a short outage heals itself, see policygate.engine.supervisor).
OPA_DOWN_UNHEALTHY_S = 30.0


@router.get("/healthz")
def healthz(service: Service) -> JSONResponse:
    supervisor = service.supervisor
    down = supervisor.down_for() if supervisor is not None else 0.0
    if down > OPA_DOWN_UNHEALTHY_S:
        content = {"status": "unhealthy", "error": f"the managed OPA has been down for {down:.0f} s"}
        return JSONResponse(status_code=503, content=content)
    restarts = supervisor.restarts if supervisor is not None else 0
    return JSONResponse({"status": "ok", "opa_restarts": restarts})


@router.get("/readyz")
def readyz(service: Service) -> JSONResponse:
    checks = {
        "opa": service.engine is not None and service.engine.healthy(),
        "decision_log": service.log.ping(),
    }
    watched = state_of(service.engine)
    if watched is not None:
        checks["policy"] = watched.ready
    ready = all(checks.values())
    content: dict[str, object] = {"ready": ready, "checks": checks}
    if service.engine is None and service.engine_error is not None:
        content["error"] = service.engine_error.message  # e.g. the policy refused at start-up
    if watched is not None:
        content["policy"] = watched.to_dict()
    return JSONResponse(status_code=200 if ready else 503, content=content)
