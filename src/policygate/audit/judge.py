"""Judging one model in use for one target against the current policy's decision: its audited entry and
its findings (drift: the policy denies it now; bypass: no release decision, or one on other evidence,
or no registered version; missed-event: a webhook that never came; unreachable: no evidence) and the
identity and lifecycle findings (orphaned, review-overdue, retired-in-use, nhi-risk) from the rules that
fire in the same decision, so they need no second reading of the directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from policygate.audit.findings import (
    AUDIT_REASONS,
    EVIDENCE_CHANGED,
    IDENTITY_KINDS,
    NO_DELIVERY,
    NO_RELEASE_DECISION,
    NOT_REGISTERED,
    RETIRED,
    AuditedModel,
    Finding,
)
from policygate.audit.governed import changed_fields, governed_digest
from policygate.audit.inventory import InUse
from policygate.config import Settings
from policygate.decisions.decision import Decision
from policygate.decisions.log import DecisionLog
from policygate.engine.result import Reason
from policygate.evidence import digest

_SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")


@dataclass
class Judged:
    """One version's evidence (collected or reused), or why it has none."""

    raw: dict[str, Any] | None = None
    collected: bool = False
    collected_at: str | None = None
    evidence_in: str | None = None
    calls: int = 0
    failure: Reason | None = None
    not_registered: bool = False
    prior: dict[str, AuditedModel] = field(default_factory=dict)  # reused: what the last run saw, by target


@dataclass
class Judge:
    """Judges the models of one audit run with the log it reads release decisions and deliveries from."""

    log: DecisionLog
    settings: Settings

    def judge(
        self,
        item: InUse,
        evidence: Judged,
        first: bool,
        doc: dict[str, Any] | None,
        decision: Decision | None,
    ) -> tuple[AuditedModel, list[Finding]]:
        """One model in use for one target: its audited entry and its findings."""
        model = AuditedModel(
            **item.about(),
            alias=item.alias,
            fingerprint=item.fingerprint,
            collected=evidence.collected,
            collected_at=evidence.collected_at,
            evidence_in=evidence.evidence_in,
            calls=evidence.calls if first else 0,  # one collection serves every target
        )
        findings: list[Finding] = []
        if self._expects_webhooks() and item.alias and not self._delivered(item):
            findings.append(
                finding("missed-event", item, [NO_DELIVERY], "medium", AUDIT_REASONS[NO_DELIVERY])
            )
        if evidence.raw is None or doc is None or decision is None:
            assert evidence.failure is not None
            if evidence.not_registered:
                message = f"{AUDIT_REASONS[NOT_REGISTERED]}: {evidence.failure.message}"
                findings.append(finding("bypass", item, [NOT_REGISTERED], "high", message))
            else:
                reason = evidence.failure
                findings.append(finding("unreachable", item, [reason.id], "high", reason.message))
            return model, findings
        model.document = digest(evidence.raw)  # the Auditor keeps a collected document in its run
        model.outcome = decision.outcome
        model.reasons = [r.id for r in decision.reasons]
        model.warnings = [r.id for r in decision.warnings]
        model.evidence_digest = governed_digest(doc)
        where = {"document": model.document, "evidence_in": model.evidence_in}
        if decision.outcome == "error":
            message = "; ".join(r.message for r in decision.reasons) or "the policy could not decide"
            findings.append(finding("unreachable", item, model.reasons, "high", message, **where))
            return model, findings
        if decision.outcome == "deny":
            findings.append(
                finding(
                    "drift",
                    item,
                    model.reasons,
                    worst(decision.reasons),
                    "; ".join(f"{r.id}: {r.message}" for r in decision.reasons),
                    **where,
                )
            )
        findings += identity_findings(item, doc, decision, where)
        prior = evidence.prior.get(item.target)
        if prior is not None and prior.release_digest == model.evidence_digest and prior.release_decision:
            # the same evidence as the decision the previous run matched (still there: append-only)
            model.release_decision, model.release_digest = prior.release_decision, prior.release_digest
            return model, findings
        release = self._release_decision(item)
        if release is None:
            findings.append(
                finding(
                    "bypass", item, [NO_RELEASE_DECISION], "high", AUDIT_REASONS[NO_RELEASE_DECISION], **where
                )
            )
            return model, findings
        decided = release.get("evidence") or {}
        model.release_decision = (release.get("decision") or {}).get("decision_id")
        model.release_digest = governed_digest(decided)
        if model.release_digest != model.evidence_digest:
            changed = changed_fields(decided, doc)
            findings.append(
                finding(
                    "bypass",
                    item,
                    [EVIDENCE_CHANGED],
                    "high",
                    f"{AUDIT_REASONS[EVIDENCE_CHANGED]} {model.release_decision}: {', '.join(changed)}",
                    decision_id=model.release_decision,
                    changed=changed,
                    **where,
                )
            )
        return model, findings

    def _release_decision(self, item: InUse) -> dict[str, Any] | None:
        """The newest allow decision policygate collected for this version and target: one indexed
        seek (what-ifs on supplied evidence count for nothing here, however many there are)."""
        record = self.log.latest_release(
            model=list(item.spellings or (item.ref,)), target=item.target, outcome="allow"
        )
        return record if record is not None and isinstance(record.get("evidence"), dict) else None

    def _expects_webhooks(self) -> bool:
        s = self.settings
        return (
            s.audit_expect_webhooks
            if s.audit_expect_webhooks is not None
            else s.mlflow_webhook_secret is not None
        )

    def _delivered(self, item: InUse) -> bool:
        for record in self.log.query(kind="delivery", model=list(item.spellings or (item.ref,)), limit=200):
            alias = str((record.get("delivery") or {}).get("alias") or "")
            if alias.lower() == (item.alias or "").lower():
                return True
        return False


def identity_findings(
    item: InUse, doc: dict[str, Any], decision: Decision, where: dict[str, Any]
) -> list[Finding]:
    """orphaned (OWN-004), review-overdue (LIF-002), retired-in-use (LIF-001, or the evidence says
    retired), nhi-risk (ACC-005 on a deployment): from the decision's denials and warnings. A rule
    that could not check (no directory: ``unchecked``) is no finding."""
    fired: dict[str, list[Reason]] = {}
    for r in [*decision.reasons, *decision.warnings]:
        if r.id in IDENTITY_KINDS and not (r.model_extra or {}).get("unchecked"):
            fired.setdefault(r.id, []).append(r)
    lifecycle = doc.get("lifecycle")
    retired = isinstance(lifecycle, dict) and lifecycle.get("retired") is True
    found: list[Finding] = []
    for rule, kind in IDENTITY_KINDS.items():
        reasons = fired.get(rule, [])
        if rule == "ACC-005" and not doc.get("deployment"):
            continue  # nhi-risk is about a deployment in use
        if rule == "LIF-001" and not reasons and retired:
            message = AUDIT_REASONS[RETIRED]
            by = (lifecycle or {}).get("retired_by")
            found.append(
                finding(
                    kind, item, [RETIRED], "high", f"{message} (retired by {by})" if by else message, **where
                )
            )
            continue
        if reasons:
            message = "; ".join(f"{r.id}: {r.message}" for r in reasons)
            found.append(finding(kind, item, [rule], worst(reasons), message, **where))
    return found


def finding(kind: Any, item: InUse, reasons: list[str], severity: str, message: str, **extra: Any) -> Finding:
    return Finding(kind=kind, **item.about(), reasons=reasons, severity=severity, message=message, **extra)


def worst(reasons: list[Reason]) -> str:
    ranks = [(_SEVERITY_ORDER.index(r.severity) if r.severity in _SEVERITY_ORDER else 1) for r in reasons]
    return _SEVERITY_ORDER[min(ranks)] if ranks else "high"
