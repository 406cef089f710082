"""What ``data.policygate.decision`` must be, and the one place its outcome is read from it.

:func:`answer_of` shapes OPA's answer to the decision query into an :class:`Answer` the same way
for both engines (an OPA server, or OPA in process), so a decision is the same on both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from policygate.engine.errors import BUNDLE, DECISION_PACKAGE, DECISION_RULE, EngineError


@dataclass(frozen=True)
class Answer:
    """OPA's answer to the decision query: ``result`` exactly as OPA sent it, the revision of the
    bundle that answered (None when OPA holds no bundle), OPA's query metrics and its version."""

    result: dict[str, Any]
    revision: str | None
    metrics: dict[str, Any] | None = None
    version: str | None = None
    engine: str = "http"  # which engine answered: "http" (an OPA server) or "inprocess" (engine.inproc)


def answer_of(answer: dict[str, Any], engine: str = "http") -> Answer:
    """The :class:`Answer` in OPA's answer to the decision query (``engine``: which one answered)."""
    provenance = answer.get("provenance")
    version = provenance.get("version") if isinstance(provenance, dict) else None
    metrics = answer.get("metrics")
    return Answer(
        decision_of(answer),
        bundle_revision(answer),
        metrics if isinstance(metrics, dict) else None,
        version if isinstance(version, str) else None,
        engine,
    )


def decision_of(result: dict[str, Any]) -> dict[str, Any]:
    """``data.policygate.decision`` from OPA's answer; undefined or not an object is an error."""
    if "result" not in result:
        raise EngineError(
            "undefined",
            f"data.{DECISION_PACKAGE}.{DECISION_RULE} is undefined: the policy gave no decision",
        )
    decision = result["result"]
    if not isinstance(decision, dict):
        raise EngineError("policy_error", f"data.{DECISION_PACKAGE}.{DECISION_RULE} is not an object")
    return decision


def bundle_revision(answer: dict[str, Any]) -> str | None:
    """The revision of the bundle that answered, from a query's provenance: the bundle named
    ``policygate``, else the only one with a revision; None without (or with several, none so named)."""
    provenance = answer.get("provenance")
    bundles = provenance.get("bundles") if isinstance(provenance, dict) else None
    if not isinstance(bundles, dict) or not bundles:
        return None
    revised = {
        name: b["revision"]
        for name, b in bundles.items()
        if isinstance(b, dict) and isinstance(b.get("revision"), str) and b["revision"]
    }  # (the managed OPA's authorization rule is a bundle without a revision)
    if BUNDLE in revised:
        return str(revised[BUNDLE])
    return str(next(iter(revised.values()))) if len(revised) == 1 else None


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
