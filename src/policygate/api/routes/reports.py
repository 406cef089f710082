"""Reports from the latest audit run (read scope): the owners report (docs/identity.md)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from policygate.api.deps import Service
from policygate.audit.owners import OwnersReport, owners_report, params_of
from policygate.audit.run import latest_run

router = APIRouter(prefix="/v1/reports", tags=["audit"])


@router.get("/owners", response_model=OwnersReport, responses={404: {}})
def get_owners(service: Service, request: Request) -> OwnersReport:
    """Every model in use with its owner, the owner's status in the directory, last review, next review
    due, counting approvers and the deployment identity's status; from the latest audit run."""
    run = latest_run(service.log)
    if run is None:
        raise HTTPException(
            status_code=404,
            detail="no audit run recorded yet: run `policygate audit run` or set POLICYGATE_AUDIT_INTERVAL_S",
        )
    return owners_report(service.log, run, params_of(request.app.state.settings.policy_path))
