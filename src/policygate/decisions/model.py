"""The decision contract returned to every caller and stored in the log."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

Outcome = Literal["allow", "deny", "error"]
EXIT_CODES: dict[str, int] = {"allow": 0, "deny": 1, "error": 2}


class Reason(BaseModel):
    """Why a decision went the way it did; policies may add fields, which are kept."""

    model_config = ConfigDict(extra="allow")

    id: str
    message: str
    severity: str = "high"
    controls: list[str] = Field(default_factory=list)
    title: str | None = None
    fields: list[str] = Field(default_factory=list)
    waiver: str | None = None


class PolicyResult(BaseModel):
    """The shape ``data.policygate.decision`` must have; anything else is a policy error."""

    allow: StrictBool
    deny: list[Reason]
    warn: list[Reason] = Field(default_factory=list)
    dryrun: list[Reason] = Field(default_factory=list)


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
    rules_checked: list[str] = Field(default_factory=list, description="Rule ids the policy evaluated.")
    evaluated_at: str

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]
