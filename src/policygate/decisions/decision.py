"""The decision contract returned to every caller and stored in the log."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr

from policygate.engine.result import PolicyResult, Reason
from policygate.exitcodes import EXIT_CODES

Outcome = Literal["allow", "deny", "error"]
EvidenceOrigin = Literal["collected", "supplied"]
__all__ = [
    "EXIT_CODES",
    "Decision",
    "EvidenceOrigin",
    "Outcome",
    "PolicyResult",
    "Reason",
    "is_release_decision",
]


class Decision(BaseModel):
    decision_id: str
    outcome: Outcome
    allow: bool
    reasons: list[Reason] = Field(default_factory=list)
    warnings: list[Reason] = Field(default_factory=list)
    dryrun: list[Reason] = Field(default_factory=list)
    policy_revision: str | None = None
    evidence_digest: str | None = None
    subject: dict[str, Any] | None = None
    target: dict[str, Any] | None = None
    requested_by: str | None = None
    caller: str | None = Field(default=None, description="Authenticated identity that asked (kind:identity).")
    ticket: str | None = Field(default=None, description="Change ticket named with the request, if any.")
    run_url: str | None = Field(default=None, description="The CI run that asked, if named.")
    evidence_origin: EvidenceOrigin | None = Field(
        default=None,
        description="collected: policygate read the sources (check, /v1/decisions, webhooks); supplied: the "
        "caller wrote the evidence (evaluate): a what-if, never the model's release decision. None: "
        "recorded before policygate kept it.",
    )
    rules_checked: list[str] = Field(default_factory=list, description="Rule ids the policy evaluated.")
    evaluated_at: str
    # OPA's own account of the query (its raw result, metrics, labels), recorded beside the decision
    # for `log export --format opa` (decisions/opa_event.py); not part of the contract
    _opa: dict[str, Any] | None = PrivateAttr(default=None)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]

    @property
    def what_if(self) -> bool:
        """Made on evidence the caller supplied: shown as such, never a release decision."""
        return self.evidence_origin == "supplied"


def is_release_decision(body: dict[str, Any]) -> bool:
    """A recorded decision (its log body) that may answer "what was decided about this model"."""
    return (body.get("decision") or {}).get("evidence_origin") != "supplied"
