"""Verified approvals: recorded by policygate from an authenticated caller, in the log's chain,
and mirrored to the platform so people see them where they work."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from policygate.decisions.log import DecisionLog
from policygate.evidence import Approval, Stage
from policygate.refs import ModelRef
from policygate.timeutil import now_iso

log = logging.getLogger(__name__)
SOURCE = "policygate"
# the reviewer's latest entry per model version and stage wins (approval.rego)
ApprovalDecision = Literal["approved", "rejected", "withdrawn"]


class ApprovalRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    model: str
    by: str = Field(description="The authenticated approver (never a value the caller typed).")
    stage: Stage
    decision: ApprovalDecision = "approved"
    at: str
    comment: str | None = None
    caller: str = Field(description="kind:identity of the authenticated caller.")
    withdraws: str | None = Field(default=None, description="The approval a withdrawal takes back.")
    artifacts_digest: str | None = Field(
        default=None,
        description="The manifest digest of the version's files when it was approved (INT-002 keeps "
        "it as a baseline); absent when the files were not read.",
    )


def record_approval(
    log_: DecisionLog,
    ref: ModelRef,
    by: str,
    caller: str,
    stage: Stage,
    decision: ApprovalDecision,
    comment: str | None,
    withdraws: str | None = None,
    artifacts_digest: str | None = None,
) -> ApprovalRecord:
    approval = ApprovalRecord(
        id=f"approval:{uuid.uuid4()}",
        model=str(ref),
        by=by,
        stage=stage,
        decision=decision,
        at=now_iso(),
        comment=comment,
        caller=caller,
        withdraws=withdraws,
        artifacts_digest=artifacts_digest,
    )
    log_.append("approval", approval.id, {"approval": approval.model_dump()}, model_ref=approval.model)
    return approval


def recorded_approval(log_: DecisionLog, approval_id: str) -> ApprovalRecord | None:
    """An approval policygate recorded, by id (None when the log has no such approval)."""
    record = log_.get(approval_id)
    body = (record or {}).get("approval")
    return ApprovalRecord.model_validate(body) if isinstance(body, dict) else None


MAX_PER_MODEL = 500


def verified_approvals(log_: DecisionLog, model_ref: str) -> list[Approval]:
    """Approvals policygate recorded for this model version, newest first."""
    return verified_from(approval_records(log_, [model_ref])[model_ref])


def approval_records(
    log_: DecisionLog, model_refs: list[str], chunk: int = 200
) -> dict[str, list[dict[str, Any]]]:
    """The approval records policygate holds for each version (their ``approval`` bodies), newest
    first, at most MAX_PER_MODEL each, read 200 versions a query. One read serves both what the
    evidence takes from them: the verified approvals and the artifact digests (INT-002)."""
    found: dict[str, list[dict[str, Any]]] = {ref: [] for ref in model_refs}
    for start in range(0, len(model_refs), chunk):
        refs = model_refs[start : start + chunk]
        for record in log_.query(kind="approval", model=refs, limit=MAX_PER_MODEL * len(refs)):
            approvals = found.setdefault(record["approval"]["model"], [])
            if len(approvals) < MAX_PER_MODEL:
                approvals.append(record)
    return found


def verified_from(records: list[dict[str, Any]]) -> list[Approval]:
    return [_verified(r["approval"]) for r in records]


def _verified(a: dict[str, Any]) -> Approval:
    return Approval(
        by=a["by"], decision=a["decision"], stage=a["stage"], at=a["at"], source=SOURCE, verified=True
    )


def with_verified(approvals: list[Approval], verified: list[Approval]) -> list[Approval]:
    """Platform copies of a verified approval (same approver, stage and time) are replaced by it."""
    seen = {(a.by.lower(), a.stage, a.at) for a in verified}
    return verified + [a for a in approvals if (a.by.lower(), a.stage, a.at) not in seen]


def mirror_to_mlflow(
    tracking_uri: str, ref: ModelRef, approval: ApprovalRecord, tag: str = "approvals"
) -> bool:
    """Append the approval to the version's ``approvals`` tag; failures are logged, not raised."""
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        mv = client.get_model_version(ref.name, str(ref.version))
        current: Any = json.loads(mv.tags.get(tag) or "[]")
        entries = current if isinstance(current, list) else []
        entries.append(
            {"by": approval.by, "stage": approval.stage, "at": approval.at, "decision": approval.decision}
        )
        client.set_model_version_tag(ref.name, str(ref.version), tag, json.dumps(entries))
        return True
    except Exception as exc:  # noqa: BLE001 - the approval is recorded; the mirror is a convenience
        log.warning("could not mirror approval %s to MLflow: %s", approval.id, type(exc).__name__)
        return False
