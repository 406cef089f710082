"""What ``data.policygate.decision`` must be, and the one place its outcome is read from it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from policygate.engine.opa import DECISION_PACKAGE, DECISION_RULE, EngineError


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
    errors: list[str] = Field(
        default_factory=list, description="Mistakes in the policies the policy itself found (main.rego)."
    )

    @property
    def outcome(self) -> Literal["allow", "deny"]:
        """A policy that allows with denials is a deny."""
        return "allow" if self.allow and not self.deny else "deny"

    @classmethod
    def from_opa(cls, raw: Any) -> PolicyResult:
        """The decision OPA answered, checked; a malformed one or one reporting policy errors raises
        :class:`EngineError` (``policy_error``), so it can only ever become an ``error`` outcome."""
        try:
            result = cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "decision"
            raise EngineError(
                "policy_error",
                f"data.{DECISION_PACKAGE}.{DECISION_RULE} is malformed at {where}: {first['msg']}",
            ) from exc
        if result.errors:
            raise EngineError("policy_error", "policy error: " + "; ".join(result.errors))
        return result
