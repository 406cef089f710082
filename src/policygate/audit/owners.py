"""The owners report: every model in use (from the latest audit run, as the register) with its owner and
the owner's status in the directory, the last owner review and when the next is due, the approvers that
count and the deployment identity's status: the sheet an access-review campaign imports. Read-only:
the identities are the ones the audit's evidence holds (collected by the run or reused by it); the
reviews are the log's lifecycle records, read now."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from policygate.audit.documents import OwnerStatus, judged_document, owner_status
from policygate.audit.findings import AuditRun
from policygate.decisions.lifecycle import lifecycle_of, lifecycle_records
from policygate.decisions.log import DecisionLog
from policygate.timeutil import parse_iso

# LIF-002's defaults (issue 29) when the policy's data names no owner_review_days
DEFAULT_REVIEW_DAYS = {"high": 90, "medium": 180, "low": 365}


class OwnerRow(BaseModel):
    model: str = Field(description="The model version in use.")
    target: str
    via: str = Field(description="Where it is in use: alias NAME, online deployment E/D, ...")
    owner: str | None = Field(description="ownership.owner in the evidence the audit judged.")
    owner_status: OwnerStatus = Field(
        description="As the directory sees the owner: active, disabled, left, unknown (not found or no "
        "owner named), service (not a person), not checked (no directory, or no evidence)."
    )
    risk_tier: str | None = None
    last_review: str | None = Field(default=None, description="lifecycle.last_review_at; null: never.")
    last_reviewed_by: str | None = None
    next_review_due: str | None = Field(
        default=None,
        description="last_review + owner_review_days for the risk tier (policy data); null: never reviewed.",
    )
    review_overdue: bool = Field(default=False, description="next_review_due has passed.")
    counting_approvers: list[str] = Field(
        default_factory=list,
        description="Approvers for the target who are not the owner and, with a directory, active people "
        "in an approver group of the tier (APR-004); the decision itself has the freshness checks.",
    )
    deployment_identity: str | None = Field(default=None, description="deployment.identity.principal_id.")
    deployment_identity_status: str | None = Field(
        default=None,
        description="ok, not checked, or what is wrong (unknown, disabled, no active human owner, holds a "
        "client secret); null: the deployment names no identity.",
    )
    findings: list[str] = Field(
        default_factory=list, description="The run's findings on it: kind:reason ids."
    )


class OwnersReport(BaseModel):
    run_id: str
    audited_at: str | None
    directory: str | None = Field(description="The directory the evidence was looked up in; null: none.")
    rows: list[OwnerRow]


@dataclass(frozen=True)
class Params:
    """What the report reads of the policy's parameters: LIF-002's and APR-004's."""

    review_days: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_REVIEW_DAYS))
    approver_groups: dict[str, list[str]] = field(default_factory=dict)


def params_of(policy_dir: Path | None) -> Params:
    """owner_review_days (else LIF-002's defaults) and approver_groups of the policy directory's data."""
    if policy_dir is None or not policy_dir.is_dir():
        return Params()
    from policygate.policy.files import policy_data, snapshot

    params = policy_data(snapshot(policy_dir), policy_dir)[0].merged.get("policygate_params") or {}
    params = params if isinstance(params, dict) else {}
    days = dict(DEFAULT_REVIEW_DAYS)
    found = params.get("owner_review_days")
    if isinstance(found, dict):
        days.update({str(k): int(v) for k, v in found.items() if isinstance(v, int | float)})
    groups = params.get("approver_groups")
    groups = (
        {str(k): [str(g) for g in v] for k, v in groups.items() if isinstance(v, list)}
        if isinstance(groups, dict)
        else {}
    )
    return Params(days, groups)


def owners_report(
    log: DecisionLog, run: AuditRun, params: Params, now: datetime | None = None
) -> OwnersReport:
    rows: list[OwnerRow] = []
    directory: str | None = None
    # the run keeps the documents as collected; reviews and retirement are the log's, read now
    lifecycles = lifecycle_records(log, sorted({m.model for m in run.models}))
    for m in run.models:
        doc = judged_document(log, run.documents, m.document, m.evidence_in)
        if not isinstance(doc.get("lifecycle"), dict):
            doc = {**doc, "lifecycle": lifecycle_of(lifecycles.get(m.model, [])).model_dump()}
        directory = directory or ((doc.get("identities") or {}).get("directory"))
        findings = [
            f"{f.kind}:{','.join(f.reasons)}"
            for f in run.findings
            if f.model == m.model and f.target == m.target and f.via == m.via
        ]
        rows.append(row_of(m.model, m.target, m.via, doc, params, findings, now))
    rows.sort(key=lambda r: (r.model, r.target, r.via))
    return OwnersReport(
        run_id=run.run_id, audited_at=run.finished_at or run.started_at, directory=directory, rows=rows
    )


def row_of(
    model: str,
    target: str,
    via: str,
    doc: dict[str, Any],
    params: Params,
    findings: list[str],
    now: datetime | None = None,
) -> OwnerRow:
    """One model in use from the evidence the audit judged (pure: unit-testable)."""
    ownership = doc.get("ownership") or {}
    identities = doc.get("identities") or {}
    lifecycle = doc.get("lifecycle") if isinstance(doc.get("lifecycle"), dict) else {}
    owner = ownership.get("owner")
    tier = ownership.get("risk_tier")
    last = (lifecycle or {}).get("last_review_at")
    due = None
    at = parse_iso(last) if isinstance(last, str) else None
    if at is not None:
        days = params.review_days  # an unknown tier: the shortest period
        due = at + timedelta(days=days.get(str(tier), min(days.values(), default=90)))
    principal = ((doc.get("deployment") or {}).get("identity") or {}).get("principal_id")
    return OwnerRow(
        model=model,
        target=target,
        via=via,
        owner=owner,
        owner_status=owner_status(doc, owner),
        risk_tier=tier,
        last_review=last,
        last_reviewed_by=(lifecycle or {}).get("last_reviewed_by"),
        next_review_due=due.isoformat().replace("+00:00", "Z") if due else None,
        review_overdue=due is not None and due < (now or datetime.now(due.tzinfo)),
        counting_approvers=counting(doc, target, owner, tier_groups(params, tier)),
        deployment_identity=principal,
        deployment_identity_status=deployment_status(identities, principal) if principal else None,
        findings=findings,
    )


def tier_groups(params: Params, tier: str | None) -> set[str] | None:
    """APR-004's groups for the tier (lower-cased); None: the tier names none (any group counts).
    An unknown tier: APR-004 wants a group of every tier that names some; approximated here by any."""
    if tier in params.approver_groups:
        return {g.lower() for g in params.approver_groups[str(tier)]} or None
    if tier is None or tier not in DEFAULT_REVIEW_DAYS:
        every = {g.lower() for gs in params.approver_groups.values() for g in gs}
        return every or None
    return None


def counting(doc: dict[str, Any], target: str, owner: str | None, groups: set[str] | None) -> list[str]:
    identities = doc.get("identities") or {}
    looked_up = {str(i.get("id", "")).lower(): i for i in identities.get("approvers") or []}
    out: list[str] = []
    for a in doc.get("approvals") or []:
        by = str(a.get("by") or "").strip()
        if not by or a.get("stage") != target or by.lower() == (owner or "").lower() or by in out:
            continue
        if identities.get("directory"):
            i = looked_up.get(by.lower()) or {}
            if not (i.get("found") and i.get("active") and i.get("kind") == "person"):
                continue
            if groups is not None and not {g.lower() for g in i.get("groups") or []} & groups:
                continue
        out.append(by)
    return sorted(out, key=str.lower)


def deployment_status(identities: dict[str, Any], principal: str) -> str:
    if not identities.get("directory"):
        return "not checked"
    d = identities.get("deployment") or {}
    if not d.get("found"):
        return "unknown"
    problems = []
    if not d.get("active"):
        problems.append("disabled")
    if not any(
        o.get("found") and o.get("active") and o.get("kind") == "person" for o in d.get("owners") or []
    ):
        problems.append("no active human owner")
    if any(str(c.get("type", "")).lower() == "secret" for c in d.get("credentials") or []):
        problems.append("holds a client secret")
    return "; ".join(problems) or "ok"
