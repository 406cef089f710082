"""Liveness and readiness: ready means OPA and the decision log both answer (and, with
``serve --watch``, that OPA took the policy files on disk: a refused change is a 503 naming it)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from policygate.api.deps import RuntimeDep, Service
from policygate.bundles.status import bundle_states
from policygate.runtime import Runtime
from policygate.runtime.null_engine import NullEngine
from policygate.runtime.parts import down_problem

router = APIRouter(tags=["health"])


# Longer than this without an OPA that restarting brings back: the process is not healthy, so an
# orchestrator should restart it (a short outage heals itself, see policygate.engine.supervisor).
OPA_DOWN_UNHEALTHY_S = 30.0


@router.get("/healthz")
def healthz(runtime: RuntimeDep) -> JSONResponse:
    supervisor = runtime.supervisor
    down = supervisor.down_for() if supervisor is not None else 0.0
    if down > OPA_DOWN_UNHEALTHY_S:
        content = {"status": "unhealthy", "error": f"the managed OPA has been down for {down:.0f} s"}
        return JSONResponse(status_code=503, content=content)
    restarts = supervisor.restarts if supervisor is not None else 0
    return JSONResponse({"status": "ok", "opa_restarts": restarts})


@router.get("/metrics", response_class=Response)
def metrics(service: Service) -> Response:
    """Prometheus exposition (docs/operations.md lists the metrics and the alerts to set)."""
    return Response(service.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@router.get("/readyz")
def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Ready: OPA answers, a record can be committed now, and every configured source answers.
    ``problems`` names what is wrong with each check that failed."""
    service = runtime.service
    problems: dict[str, str | None] = {"opa": _opa_problem(runtime), "decision_log": service.log.writable()}
    # the checks the running parts answer: the checkpoint writer's, the policy watcher's (--watch)
    parts = {status.check: status for status in runtime.statuses() if status.check is not None}
    for check, status in parts.items():
        problems[check] = status.problem
    bundles = bundle_states(runtime.engine)
    if bundles is not None:
        inactive = [name for name, b in bundles.items() if not b["active_revision"]]
        if inactive:
            problems["opa_bundle"] = "; ".join(
                f"bundle {name} is not active: {bundles[name]['refused'] or 'not loaded yet'}"
                for name in inactive
            )
    for platform, problem in service.collector.probe().items():
        problems[f"source:{platform}"] = problem
    checks = {name: problem is None for name, problem in problems.items()}
    ready = all(checks.values())
    content: dict[str, object] = {"ready": ready, "checks": checks}
    failed = {name: problem for name, problem in problems.items() if problem is not None}
    if failed:
        content["problems"] = failed
    if isinstance(runtime.engine, NullEngine):
        content["error"] = runtime.engine.error.message  # e.g. the policy refused at start-up
    else:
        content["engine"] = runtime.engine.kind  # "inprocess" (OPA linked in) or "http" (an OPA server)
    for check, status in parts.items():
        if status.detail is not None:
            content[check] = status.detail
    if bundles is not None:
        content["bundles"] = bundles
        refused = [
            f"bundle {name}: the newest was refused ({b['refused']}); "
            f"revision {b['active_revision']} keeps deciding"
            for name, b in bundles.items()
            if b["refused"] and b["active_revision"]
        ]
        if refused:  # still ready: the last good policy decides (all replicas unready would be an outage)
            content["warnings"] = refused
    return JSONResponse(status_code=200 if ready else 503, content=content)


def _opa_problem(runtime: Runtime) -> str | None:
    engine = runtime.engine
    if isinstance(engine, NullEngine):
        return f"OPA did not start: {engine.error.message}"
    down = down_problem(runtime.supervisor) if runtime.supervisor is not None else None
    if down is not None:
        return down
    return None if engine.healthy() else f"OPA at {engine.url} does not answer"
