"""The decision contract returned to every caller and stored in the log."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from policygate.engine.result import PolicyResult, Reason

Outcome = Literal["allow", "deny", "error"]
EXIT_CODES: dict[str, int] = {"allow": 0, "deny": 1, "error": 2}
__all__ = ["EXIT_CODES", "Decision", "Outcome", "PolicyResult", "Reason"]


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
