"""Who answers for the model (ownership) and who signed off its promotion (approvals)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from policygate.evidence.fields import Part


class Ownership(Part):
    """Who is accountable for the model, and how risky its use is."""

    owner: str | None = Field(default=None, description="Accountable owner (a person).")
    team: str | None = Field(default=None, description="Owning team.")
    use_case: str | None = Field(default=None, description="Declared business use case.")
    risk_tier: str | None = Field(default=None, description="Declared risk tier: low, medium or high.")


class Approval(Part):
    """A sign-off for promoting the model to a stage."""

    by: str = Field(min_length=1, description="Approver identity.")
    decision: Literal["approved", "rejected", "withdrawn"] = Field(
        default="approved",
        description="approved, or rejected / withdrawn: the reviewer's latest entry for a stage wins, so a "
        "later rejection or withdrawal takes an earlier approval back.",
    )
    stage: str = Field(description="Stage the approval is for.")
    at: str | None = Field(default=None, description="ISO-8601 time of the approval.")
    source: str | None = Field(default=None, description="Where the approval was read from.")
    verified: bool = Field(
        default=False, description="True when recorded by policygate from an authenticated caller."
    )
