"""An audit run as recorded in the chain (log kind ``audit``) and answered by ``GET /v1/audit``."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

FindingKind = Literal[
    "drift",
    "bypass",
    "missed-event",
    "unreachable",
    "orphaned",
    "review-overdue",
    "retired-in-use",
    "nhi-risk",
]
KINDS: tuple[FindingKind, ...] = get_args(FindingKind)
# The identity and lifecycle kinds (issue 29), each from the rule that fires in the audit's own decision.
IDENTITY_KINDS: dict[str, FindingKind] = {
    "OWN-004": "orphaned",
    "LIF-002": "review-overdue",
    "LIF-001": "retired-in-use",
    "ACC-005": "nhi-risk",
}

# The audit's own reason ids (the policy's rules name drift; ERR-* an audit that could not be made).
NO_RELEASE_DECISION = "AUD-001"
EVIDENCE_CHANGED = "AUD-002"
NO_DELIVERY = "AUD-003"
NOT_REGISTERED = "AUD-004"
RETIRED = "AUD-005"
AUDIT_REASONS = {
    RETIRED: "the version is retired (lifecycle.retired) but an alias or deployment still serves it",
    NO_RELEASE_DECISION: "no collected allow release decision for this version and target",
    EVIDENCE_CHANGED: "the evidence changed since the allow release decision",
    NO_DELIVERY: "an alias points at this version, but no webhook delivery for it was recorded",
    NOT_REGISTERED: "the deployed model is not a registered version the platform knows",
}


class Finding(BaseModel):
    kind: FindingKind
    model: str = Field(description="The model version's reference.")
    platform: str
    name: str
    version: str
    target: str
    via: str = Field(description="How it serves the target: alias NAME, online deployment E/D, ...")
    reasons: list[str] = Field(
        description="Rule ids (drift, orphaned, review-overdue, retired-in-use, nhi-risk), AUD-* (bypass, "
        "missed-event, retired-in-use) or ERR-*."
    )
    severity: str
    message: str
    decision_id: str | None = Field(default=None, description="The release decision concerned, if any.")
    document: str | None = Field(default=None, description="Digest of the evidence document judged.")
    evidence_in: str | None = Field(default=None, description="Record id holding that document.")
    changed: list[str] = Field(
        default_factory=list, description="AUD-002: the governed fields that differ from the decision's."
    )


class AuditedModel(BaseModel):
    model: str = Field(description="The model version's reference.")
    platform: str = Field(description="mlflow or azureml: where it was found in use.")
    name: str = Field(description="The registered model's name on that platform.")
    version: str = Field(description="The version in use.")
    target: str = Field(description="The stage it serves (development, staging, production).")
    via: str = Field(description="How it serves the target: alias NAME, online deployment E/D, ...")
    alias: str | None = Field(default=None, description="The alias, when it is in use through one.")
    outcome: Literal["allow", "deny", "error"] | None = Field(
        default=None, description="The current policy's decision; None when it could not be audited."
    )
    reasons: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    collected: bool = Field(
        default=False, description="Evidence collected in this run; False: reused from evidence_in."
    )
    evidence_digest: str | None = Field(
        default=None,
        description="Digest of the governed content (docs/audit.md), compared with the release decision's.",
    )
    document: str | None = Field(default=None, description="Digest of the evidence document as collected.")
    evidence_in: str | None = Field(default=None, description="Record id holding that document.")
    collected_at: str | None = None
    fingerprint: str | None = None
    release_decision: str | None = Field(default=None, description="The newest allow decision's id.")
    release_digest: str | None = Field(
        default=None,
        description="The governed digest of that decision's evidence (a later run compares it "
        "without reading the decision again: the log is append-only).",
    )
    calls: int = 0


class AuditRun(BaseModel):
    run_id: str
    started_at: str
    finished_at: str | None = None
    duration_s: float | None = None
    policy_revision: str | None = None
    platforms: list[str] = Field(default_factory=list)
    target: str | None = None
    complete: bool = Field(description="Every model in use listed and audited.")
    errors: list[str] = Field(
        default_factory=list, description="Listings that failed: what could not be seen."
    )
    unreached: list[str] = Field(default_factory=list, description="Models in use that could not be audited.")
    models: list[AuditedModel] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    enforcement: list[dict[str, Any]] = Field(default_factory=list)
    calls: int = Field(default=0, description="Platform calls made by this run (listings and collections).")
    documents: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Evidence documents collected in this run, by digest."
    )

    @property
    def exit_code(self) -> int:
        """0 clean, 1 findings, 2 could not audit (a listing failed or a model was unreachable)."""
        if not self.complete or self.errors or any(f.kind == "unreachable" for f in self.findings):
            return 2
        return 1 if self.findings else 0

    @property
    def status(self) -> str:
        return {0: "clean", 1: "findings", 2: "incomplete"}[self.exit_code]

    def counts(self) -> dict[str, int]:
        return {k: sum(1 for f in self.findings if f.kind == k) for k in KINDS}

    def summary(self) -> dict[str, Any]:
        """The run without its documents (what the API and the JSON report lead with)."""
        return {
            "status": self.status,
            "exit_code": self.exit_code,
            "findings_by_kind": self.counts(),
            "models_audited": len(self.models),
            "collected": sum(1 for m in self.models if m.collected),
            "reused": sum(1 for m in self.models if m.outcome is not None and not m.collected),
        }
