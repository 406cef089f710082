"""The record, verified for an auditor with a read token: no database credentials needed."""

from __future__ import annotations

import threading

from fastapi import APIRouter, HTTPException, Request

from policygate.api.deps import Service
from policygate.auth.tokens import table_problems
from policygate.decisions.log_check import LogVerification, check_log

router = APIRouter(prefix="/v1/log", tags=["log"])
_walking = threading.Lock()  # one walk of the whole chain at a time per process (a million records)


@router.get("/verify", response_model=LogVerification, responses={429: {}})
def verify(request: Request, service: Service) -> LogVerification:
    """Walk the hash chain from the genesis (every record, every filtered column), check the API token
    rows against it and, when the service signs checkpoints (POLICYGATE_CHECKPOINT_KEY and _DIR), that
    the log still extends the newest one. ``ok`` false names the first tampered record. Read scope, as
    ``policygate log verify`` answers with database access."""
    if not _walking.acquire(blocking=False):
        raise HTTPException(
            status_code=429,
            detail="a verification of the chain is running: try again in a moment",
            headers={"Retry-After": "5"},
        )
    try:
        settings = request.app.state.settings
        result = check_log(service.log, settings.checkpoint_key, settings.checkpoint_dir)
        if result.ok:
            tokens = table_problems(service.log)
            if tokens:
                problem = "API tokens differ from the chain: " + "; ".join(tokens[:10])
                result = result.model_copy(update={"ok": False, "token_problems": tokens, "problem": problem})
        return result
    finally:
        _walking.release()
