"""``GET /v1/decisions/{id}/attestation``: the signed attestation of a collected release decision that
still stands (read scope), with the key POLICYGATE_CHECKPOINT_KEY names (docs/integrity.md); and
``GET /v1/decisions/{id}/standing``: whether it still stands (what ``attest verify --server`` asks)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request

from policygate.api.deps import RuntimeDep
from policygate.decisions.checkpoint import CheckpointError, load_private
from policygate.decisions.log import LogError
from policygate.decisions.standing import attestation_of, standing_record
from policygate.integrity.attest import AttestError, sign

router = APIRouter(prefix="/v1/decisions", tags=["decisions"])


@router.get("/{decision_id}/attestation", responses={404: {}, 409: {}, 503: {}})
def attestation(
    request: Request,
    runtime: RuntimeDep,
    decision_id: Annotated[str, Path(max_length=64, description="A collected release decision's id.")],
) -> dict[str, Any]:
    """A DSSE envelope of an in-toto statement: subjects the model's manifest digest and each artifact
    file, predicate the decision with its policy revision, evidence digest and place in the log."""
    key_file = runtime.settings.checkpoint_key
    if key_file is None:
        raise HTTPException(status_code=503, detail="no signing key: set POLICYGATE_CHECKPOINT_KEY")
    try:
        key = load_private(key_file)
    except CheckpointError:
        raise HTTPException(
            status_code=503, detail="the signing key POLICYGATE_CHECKPOINT_KEY cannot be read"
        ) from None
    try:
        stmt = attestation_of(runtime.log, decision_id, ttl_s=runtime.settings.attestation_ttl_s)
        return sign(stmt, key)
    except LogError:
        raise HTTPException(status_code=503, detail="the decision log cannot be read") from None
    except LookupError as exc:
        raise HTTPException(status_code=404, detail=str(exc.args[0])) from None
    except AttestError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None


@router.get("/{decision_id}/standing", responses={404: {}, 503: {}})
def standing(
    runtime: RuntimeDep,
    decision_id: Annotated[str, Path(max_length=64, description="A collected release decision's id.")],
) -> dict[str, Any]:
    """Whether the decision is still its model version's standing decision for its target: no later
    collected decision for them, no approval it counted withdrawn. ``reason`` says why not."""
    try:
        standing_record(runtime.log, decision_id)
    except LogError:
        raise HTTPException(status_code=503, detail="the decision log cannot be read") from None
    except LookupError as exc:
        raise HTTPException(status_code=404, detail=str(exc.args[0])) from None
    except AttestError as exc:  # a what-if never stood; NotStanding: superseded or withdrawn
        return {"decision_id": decision_id, "standing": False, "reason": str(exc)}
    return {"decision_id": decision_id, "standing": True, "reason": None}
