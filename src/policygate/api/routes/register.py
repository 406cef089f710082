"""The governed register from the latest audit run (read scope)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException

from policygate.api.deps import Service
from policygate.audit.register import Register, register
from policygate.audit.run import latest_run

router = APIRouter(prefix="/v1", tags=["audit"])


@router.get("/register", response_model=Register, responses={404: {}})
def get_register(
    service: Service, target: Literal["development", "staging", "production"] | None = None
) -> Register:
    """One row per model version in use (bypassed ones included): owner at release and now, the standing
    release decision, policy revision, lineage, change ticket, open findings; from the latest audit run."""
    run = latest_run(service.log)
    if run is None:
        raise HTTPException(
            status_code=404,
            detail="no audit run recorded yet: run `policygate audit run` or set POLICYGATE_AUDIT_INTERVAL_S",
        )
    return register(service.log, run, target)
