"""Why a decision went the way it did, for a person who does not read Rego.

For each reason (deny, warning, dry-run finding) the explanation gives the rule's
id, title and description, the message, the enforcement mode (and waiver), and the
evidence fields the rule read (``reason.fields``) with their values.

It then asks OPA itself: the policies and data the server holds are evaluated once
more with ``opa eval --explain full`` on the same input, and from OPA's trace each
firing rule's path is taken: the conditions that held (source text and line), the
variables they bound, and the values of the policy facts they used (e.g.
``required_approvals = 2``). The recorded decision is not touched: the
explanation is an optional addition to the answer.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from policygate.decisions.decision import Decision, Reason
from policygate.engine.catalogue import annotated_rules
from policygate.engine.errors import EngineError
from policygate.engine.opa import OpaEngine
from policygate.policy.trace import Condition, Firing, opa_trace


class FieldValue(BaseModel):
    path: str
    present: bool = Field(description="False when the evidence has no value at this path.")
    value: Any = None
    gap: bool = Field(default=False, description="The sources reported this field missing.")


class ReasonExplanation(BaseModel):
    kind: Literal["deny", "warn", "dryrun", "error"]
    id: str
    title: str | None = None
    description: str | None = None
    severity: str
    mode: str = Field(description="enforce, warn or dryrun (a waived deny is enforce with a waiver).")
    waiver: str | None = None
    message: str
    fields: list[FieldValue] = Field(default_factory=list)
    rule_location: str | None = None
    conditions: list[Condition] = Field(default_factory=list)
    facts: dict[str, Any] = Field(
        default_factory=dict, description="Values of the policy facts the conditions used."
    )


class Explanation(BaseModel):
    outcome: str
    summary: str
    reasons: list[ReasonExplanation] = Field(default_factory=list)
    rules_checked: list[str] = Field(default_factory=list)
    trace: str | None = Field(default=None, description="How OPA's own explanation was obtained.")
    notes: list[str] = Field(default_factory=list)


# ---------------------------------------------------------------------------
# Evidence values
# ---------------------------------------------------------------------------

_MISSING = object()


def lookup(doc: Any, path: str) -> Any:
    """The value at a dotted path, or _MISSING (a null value counts as missing too)."""
    node = doc
    for key in path.split("."):
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return _MISSING
    return _MISSING if node is None else node


def field_values(doc: dict[str, Any], paths: list[str]) -> list[FieldValue]:
    gaps = set(((doc.get("collection") or {}).get("gaps")) or [])
    out = []
    for path in paths:
        value = lookup(doc, path)
        present = value is not _MISSING
        out.append(FieldValue(path=path, present=present, value=value if present else None, gap=path in gaps))
    return out


# ---------------------------------------------------------------------------
# Putting it together
# ---------------------------------------------------------------------------


def _mode(kind: str, reason: Reason) -> str:
    if kind == "warn" and not reason.waiver:
        return "warn"
    return "dryrun" if kind == "dryrun" else "enforce"


def _summary(decision: Decision) -> str:
    subject = (decision.subject or {}).get("ref") or "the model"
    stage = (decision.target or {}).get("stage") or "its target"
    extra = []
    if decision.warnings:
        waived = sum(1 for w in decision.warnings if w.waiver)
        extra.append(f"{len(decision.warnings)} warning(s)" + (f", {waived} waived" if waived else ""))
    if decision.dryrun:
        extra.append(f"{len(decision.dryrun)} dry-run finding(s) not enforced yet")
    tail = f" ({'; '.join(extra)})" if extra else ""
    if decision.outcome == "error":
        return (
            f"Could not decide on {subject} -> {stage}: "
            + "; ".join(r.message for r in decision.reasons)
            + ". The gate fails closed: treat this as a deny."
        )
    if decision.outcome == "allow":
        return f"{subject} may go to {stage}: no enforced rule denied it{tail}."
    rules = ", ".join(f"{r.id} ({r.title or r.message[:40]})" for r in decision.reasons)
    return f"{subject} may not go to {stage}: denied by {rules}{tail}."


def explain(
    decision: Decision,
    doc: dict[str, Any] | None,
    engine: OpaEngine | None,
    binary: str | None,
) -> Explanation:
    """The explanation of a decision made on ``doc`` by the policies ``engine`` holds."""
    doc = doc or {}
    out = Explanation(
        outcome=decision.outcome, summary=_summary(decision), rules_checked=decision.rules_checked
    )
    if decision.outcome == "error":
        out.reasons = [
            ReasonExplanation(kind="error", id=r.id, severity=r.severity, mode="enforce", message=r.message)
            for r in decision.reasons
        ]
        return out
    anns: dict[str, dict[str, Any]] = {}
    firings: list[Firing] = []
    facts: dict[str, Any] = {}
    if engine is not None:
        try:
            anns = {a["custom"]["id"]: a for a in annotated_rules(engine)}
        except EngineError as exc:
            out.notes.append(f"rule descriptions unavailable: {exc.message}")
        if binary:
            try:
                firings, facts, traced = opa_trace(engine, binary, doc)
                out.trace = "opa eval --explain full on the policies and data the OPA server holds"
                if sorted(r.get("id", "") for r in traced.get("deny") or []) != sorted(
                    r.id for r in decision.reasons
                ):
                    out.notes.append(
                        "OPA's trace run reached different denials than the recorded decision "
                        "(the policies or waivers changed since it was made)"
                    )
            except (EngineError, ValueError, KeyError, IndexError, TypeError) as exc:
                out.notes.append(f"OPA trace unavailable: {exc}")
    unused = list(firings)
    for kind, reasons in (
        ("deny", decision.reasons),
        ("warn", decision.warnings),
        ("dryrun", decision.dryrun),
    ):
        for r in reasons:
            firing = _match(r, unused)
            ann = anns.get(r.id) or {}
            out.reasons.append(
                ReasonExplanation(
                    kind=kind,  # type: ignore[arg-type]
                    id=r.id,
                    title=r.title or ann.get("title"),
                    description=" ".join(str(ann.get("description", "")).split()) or None,
                    severity=r.severity,
                    mode=_mode(kind, r),
                    waiver=r.waiver,
                    message=r.message,
                    fields=field_values(doc, r.fields),
                    rule_location=firing.rule_location if firing else None,
                    conditions=firing.conditions if firing else [],
                    facts={k: facts[k] for k in (firing.facts if firing else []) if k in facts},
                )
            )
    return out


def _match(reason: Reason, firings: list[Firing]) -> Firing | None:
    same = [f for f in firings if f.rule_id == reason.id]
    pick = next((f for f in same if f.message and reason.message.startswith(f.message)), None)
    pick = pick or (same[0] if same else None)
    if pick is not None:
        firings.remove(pick)
    return pick
