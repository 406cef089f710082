"""Record an approval as the authenticated caller (scope ``approve``)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from policygate.api.auth import Caller
from policygate.api.deps import Service
from policygate.auth.principal import Principal
from policygate.config import Settings
from policygate.decisions.approvals import (
    ApprovalDecision,
    ApprovalRecord,
    mirror_to_mlflow,
    record_approval,
    recorded_approval,
)
from policygate.decisions.service import DecisionService
from policygate.evidence import TEXT, Stage
from policygate.refs import MODEL_REF_MAX, MODEL_VERSION_PATTERN, ModelRef, parse
from policygate.sources.base import SourceError

router = APIRouter(prefix="/v1", tags=["approvals"])


class ApprovalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(
        description="Model version reference (a version, not an alias).",
        max_length=MODEL_REF_MAX,
        json_schema_extra={"pattern": MODEL_VERSION_PATTERN},  # stated; parse() checks it (its own message)
    )
    stage: Stage
    decision: ApprovalDecision = Field(
        default="approved",
        description="approved, rejected or withdrawn: your latest entry for the version and stage wins.",
    )
    comment: str | None = Field(default=None, max_length=2000, pattern=TEXT)

    @field_validator("model")
    @classmethod
    def _version(cls, value: str) -> str:
        if parse(value).version is None:
            raise ValueError("approve a model version, not an alias: aliases move")
        return value


class ApprovalAnswer(BaseModel):
    approval: ApprovalRecord
    mirrored: bool = Field(description="Whether the approval was also written to the platform.")


@router.post("/approvals", status_code=201, response_model=ApprovalAnswer)
def approve(body: ApprovalRequest, request: Request, service: Service, caller: Caller) -> ApprovalAnswer:
    """Record the caller's approval, rejection or withdrawal for a model version that exists."""
    _authenticated(caller)
    ref = parse(body.model)
    digest = _must_exist(service, ref)
    approval = record_approval(
        service.log,
        ref,
        caller.id,
        caller.label,
        body.stage,
        body.decision,
        body.comment,
        artifacts_digest=digest if body.decision == "approved" else None,
    )
    service.approvals_changed(approval.model)
    return ApprovalAnswer(approval=approval, mirrored=_mirrored(request, ref, approval))


@router.delete("/approvals/{approval_id}", response_model=ApprovalAnswer)
def withdraw(
    approval_id: str, request: Request, service: Service, caller: Caller, comment: str | None = None
) -> ApprovalAnswer:
    """Take an approval back: a ``withdrawn`` entry in the chain for the same reviewer, version and
    stage (the reviewer's latest entry wins). Only its approver, or an admin, may."""
    _authenticated(caller)
    original = recorded_approval(service.log, approval_id)
    if original is None or original.decision != "approved":
        raise HTTPException(status_code=404, detail=f"no approval {approval_id[:80]!r} recorded")
    if original.by.lower() != caller.id.lower() and not caller.may("admin"):
        raise HTTPException(status_code=403, detail="only the approver (or an admin) may withdraw it")
    ref = parse(original.model)
    withdrawal = record_approval(
        service.log, ref, original.by, caller.label, original.stage, "withdrawn", comment, approval_id
    )
    service.approvals_changed(withdrawal.model)
    return ApprovalAnswer(approval=withdrawal, mirrored=_mirrored(request, ref, withdrawal))


def _authenticated(caller: Principal) -> None:
    if caller.kind == "anonymous":
        raise HTTPException(
            status_code=401, detail="an approval needs an authenticated approver: send a token"
        )


def _must_exist(service: DecisionService, ref: ModelRef) -> str | None:
    """A version its platform does not know cannot be approved (404); one whose platform cannot be
    asked is refused too (503): an approval waiting for a version that appears later is a blank cheque.
    Returns the manifest digest of the version's files as read now (what the approver approved), if
    the platform read them."""
    source = service.collector.sources.get(ref.platform)
    if source is None:
        raise HTTPException(
            status_code=503, detail=f"cannot confirm {ref} exists: no {ref.platform} source is configured"
        )
    try:
        parts = source.collect(ref)
    except SourceError as exc:
        if exc.not_found:
            raise HTTPException(status_code=404, detail=f"{ref} does not exist: {exc.message}") from None
        raise HTTPException(status_code=503, detail=f"cannot confirm {ref} exists: {exc}") from None
    return parts.artifacts.digest if parts.artifacts is not None else None


def _mirrored(request: Request, ref: ModelRef, approval: ApprovalRecord) -> bool:
    settings: Settings = request.app.state.settings
    return bool(
        ref.platform == "mlflow"
        and settings.mlflow_uri
        and mirror_to_mlflow(settings.mlflow_uri, ref, approval, settings.tags.approvals)
    )
