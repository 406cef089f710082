"""Record an approval as the authenticated caller (scope ``approve``)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from policygate.api.auth import Caller
from policygate.api.deps import Service
from policygate.approvals import ApprovalRecord, mirror_to_mlflow, record_approval
from policygate.config import Settings
from policygate.evidence import Stage
from policygate.refs import parse

router = APIRouter(prefix="/v1", tags=["approvals"])


class ApprovalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(description="Model version reference (a version, not an alias).")
    stage: Stage
    decision: Literal["approved", "rejected"] = "approved"
    comment: str | None = Field(default=None, max_length=2000)

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
    if caller.kind == "anonymous":
        raise HTTPException(
            status_code=401, detail="an approval needs an authenticated approver: send a token"
        )
    ref = parse(body.model)
    approval = record_approval(
        service.log, ref, caller.id, caller.label, body.stage, body.decision, body.comment
    )
    settings: Settings = request.app.state.settings
    mirrored = bool(
        ref.platform == "mlflow"
        and settings.mlflow_uri
        and mirror_to_mlflow(settings.mlflow_uri, ref, approval, settings.tags.approvals)
    )
    return ApprovalAnswer(approval=approval, mirrored=mirrored)
