"""The governed register: one row per model version in use (bypassed ones included), from the latest
audit run joined with what the log holds about each (its standing release decision, the evidence it
was made on): who owned it at release and now, which decision released it and with which policy, the
lineage, the change ticket, and the findings still open. Read-only: nothing is collected here."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from policygate.audit.documents import OwnerStatus, judged_document, owner_status
from policygate.audit.findings import AuditedModel, AuditRun
from policygate.audit.release_facts import (
    AppliedWaiver,
    CountedApproval,
    Withdrawal,
    applied_waivers,
    counted_approvals,
    withdrawn_since,
)
from policygate.decisions.log import DecisionLog
from policygate.decisions.record import lineage_summary, model_spellings


class RegisterRow(BaseModel):
    model: str = Field(description="The model version in use.")
    target: str
    via: str = Field(description="Where it is in use: alias NAME, online deployment E/D, ...")
    owner_at_release: str | None = Field(description="Owner in the evidence of the release decision.")
    owner_now: str | None = Field(description="Owner in the evidence the audit run read.")
    owner_changed: bool = Field(description="The owner now differs from the owner at release.")
    decision_id: str | None = Field(description="The standing release decision (newest, any outcome).")
    outcome: str | None = Field(description="Its outcome; null: no release decision (a bypass).")
    decided_at: str | None = None
    requested_by: str | None = None
    sent_by: str | None = Field(default=None, description="The authenticated identity that sent it.")
    policy_revision: str | None = None
    run: str | None = Field(default=None, description="Training run (platform:id).")
    commit: str | None = None
    datasets: list[str] = Field(default_factory=list, description="name@digest of each dataset.")
    ticket: str | None = None
    run_url: str | None = None
    audit_outcome: str | None = Field(default=None, description="The current policy's decision in the run.")
    findings: list[str] = Field(default_factory=list, description="Open findings: kind:reason ids.")
    # added after the register first shipped: at the end, so the csv columns keep their places
    approvals: list[CountedApproval] = Field(
        default_factory=list, description="The approvals that counted for the standing release decision."
    )
    withdrawn: list[Withdrawal] = Field(
        default_factory=list,
        description="Withdrawals or rejections since, by a reviewer it counted: it no longer stands.",
    )
    waivers: list[AppliedWaiver] = Field(default_factory=list, description="The waivers it applied.")
    owner_now_status: OwnerStatus = Field(
        default="not checked",
        description="The owner now as the identity directory saw them in the audit's evidence "
        "(active, disabled, left, unknown, service; not checked: no directory).",
    )


class Register(BaseModel):
    run_id: str
    audited_at: str | None
    policy_revision: str | None = Field(description="The policy the audit run judged with.")
    complete: bool
    rows: list[RegisterRow]


def register(log: DecisionLog, run: AuditRun, target: str | None = None) -> Register:
    """The register of ``run`` (optionally one target)."""
    rows = [_row(log, run, m) for m in run.models if target is None or m.target == target]
    rows.sort(key=lambda r: (r.model, r.target, r.via))
    return Register(
        run_id=run.run_id,
        audited_at=run.finished_at or run.started_at,
        policy_revision=run.policy_revision,
        complete=run.complete,
        rows=rows,
    )


def _document(log: DecisionLog, run: AuditRun, m: AuditedModel) -> dict[str, Any]:
    return judged_document(log, run.documents, m.document, m.evidence_in)


def _row(log: DecisionLog, run: AuditRun, m: AuditedModel) -> RegisterRow:
    standing = log.latest_release(model=model_spellings(m.model), target=m.target) or {}
    decision: dict[str, Any] = standing.get("decision") or {}
    evidence: dict[str, Any] = standing.get("evidence") or {}
    request: dict[str, Any] = evidence.get("request") or {}
    now = _document(log, run, m)
    owner_then = (evidence.get("ownership") or {}).get("owner")
    owner_now = (now.get("ownership") or {}).get("owner") if now else None
    lineage = lineage_summary(evidence) or lineage_summary(now) or {}
    run_of = lineage.get("run") or {}
    spellings = model_spellings(m.model)
    counted = counted_approvals(log, spellings, standing) if standing else []
    return RegisterRow(
        model=m.model,
        target=m.target,
        via=m.via,
        owner_at_release=owner_then,
        owner_now=owner_now,
        owner_changed=bool(standing) and bool(now) and owner_then != owner_now,
        owner_now_status=owner_status(now, owner_now),
        decision_id=decision.get("decision_id"),
        outcome=decision.get("outcome"),
        decided_at=standing.get("recorded_at"),
        requested_by=decision.get("requested_by"),
        sent_by=decision.get("caller"),
        approvals=counted,
        withdrawn=withdrawn_since(log, spellings, standing, counted) if standing else [],
        waivers=applied_waivers(log, standing) if standing else [],
        policy_revision=decision.get("policy_revision"),
        run=f"{run_of.get('platform')}:{run_of.get('id')}" if run_of else None,
        commit=lineage.get("commit"),
        datasets=[f"{d.get('name')}@{d.get('digest')}" for d in lineage.get("datasets") or []],
        ticket=decision.get("ticket") or request.get("ticket"),
        run_url=decision.get("run_url") or request.get("run_url"),
        audit_outcome=m.outcome,
        findings=[
            f"{f.kind}:{','.join(f.reasons)}"
            for f in run.findings
            if f.model == m.model and f.target == m.target and f.via == m.via
        ],
    )
