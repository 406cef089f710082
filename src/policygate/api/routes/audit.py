"""Audit runs as recorded in the chain: the latest, or one by id (read scope); one run now, with the
service's own policy and settings (audit scope), so an auditor's token needs neither the log's
credentials nor the platforms'."""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path

from policygate.api.deps import RuntimeDep, Service
from policygate.audit.findings import AuditRun
from policygate.audit.run import Auditor, get_run, latest_run
from policygate.decisions.log import LogError

router = APIRouter(prefix="/v1/audit", tags=["audit"])
_running = threading.Lock()  # one run at a time per process (a scheduled one has its own thread)


def _answer(run: AuditRun) -> dict[str, Any]:
    """The run with its summary first; its evidence documents stay in the log (by digest)."""
    return {**run.summary(), **run.model_dump(mode="json", exclude={"documents"})}


@router.get("", responses={404: {}})
def latest_audit(service: Service) -> dict[str, Any]:
    """The latest audit run: its models in use, findings and whether it could audit everything."""
    run = latest_run(service.log)
    if run is None:
        raise HTTPException(
            status_code=404,
            detail="no audit run recorded yet: run `policygate audit run` or set POLICYGATE_AUDIT_INTERVAL_S",
        )
    return _answer(run)


@router.get("/runs/{run_id}", responses={404: {}})
def audit_run(
    service: Service, run_id: Annotated[str, Path(max_length=64, description="The run's id.")]
) -> dict[str, Any]:
    """One audit run by id."""
    run = get_run(service.log, run_id)
    if run is None:
        raise HTTPException(status_code=404, detail=f"no audit run {run_id!r}")
    return _answer(run)


@router.post("/runs", status_code=201, responses={409: {}, 503: {}})
def start_audit_run(runtime: RuntimeDep) -> dict[str, Any]:
    """Audit every model in use now, as `policygate audit run` does, with this service's policy,
    platforms and settings; record the run and answer its id and summary (GET /v1/audit/runs/{id}
    for the whole run, GET /v1/register for the register)."""
    if not _running.acquire(blocking=False):
        raise HTTPException(status_code=409, detail="an audit run is already under way: try again shortly")
    try:
        run = Auditor(runtime.service, runtime.settings, writeback=runtime.writeback).run()
    except LogError as exc:
        raise HTTPException(status_code=503, detail=f"{exc}; the audit was not recorded") from exc
    finally:
        _running.release()
    return {"run_id": run.run_id, "started_at": run.started_at, "finished_at": run.finished_at,
            "policy_revision": run.policy_revision, "complete": run.complete, **run.summary()}  # fmt: skip
