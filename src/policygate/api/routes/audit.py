"""Audit runs as recorded in the chain: the latest, or one by id (read scope)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path

from policygate.api.deps import Service
from policygate.audit.findings import AuditRun
from policygate.audit.run import get_run, latest_run

router = APIRouter(prefix="/v1/audit", tags=["audit"])


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
