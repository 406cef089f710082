"""The identity and lifecycle finding kinds from the audit's own decision (issue 29). The lifecycle
rules (LIF-001, LIF-002) and the evidence's ``lifecycle`` are built elsewhere; their mapping is checked
here on decisions shaped as OPA answers them, end to end for orphaned and nhi-risk in
tests/integration/test_identity_audit.py."""

from __future__ import annotations

from typing import Any

from policygate.audit.inventory import InUse
from policygate.audit.judge import identity_findings
from policygate.decisions.decision import Decision
from policygate.engine.result import Reason

ITEM = InUse("mlflow:models:/fraud/3", "mlflow", "fraud", "3", "production", "alias champion", "champion")


def decision(deny: list[Reason], warn: list[Reason] | None = None) -> Decision:
    return Decision(
        decision_id="d", outcome="deny" if deny else "allow", allow=not deny, reasons=deny,
        warnings=warn or [], evaluated_at="2026-12-07T12:00:00Z",
    )  # fmt: skip


def kinds(doc: dict[str, Any], d: Decision) -> list[tuple[str, list[str], str]]:
    return [(f.kind, f.reasons, f.severity) for f in identity_findings(ITEM, doc, d, {})]


def test_each_rule_maps_to_its_kind() -> None:
    deny = [
        Reason(id="OWN-004", message="owner left"),
        Reason(id="LIF-001", message="retired"),
        Reason(id="ACC-005", message="holds a client secret"),
    ]
    warn = [Reason(id="LIF-002", message="review overdue", severity="medium")]
    assert kinds({"deployment": {"name": "blue"}}, decision(deny, warn)) == [
        ("orphaned", ["OWN-004"], "high"),
        ("review-overdue", ["LIF-002"], "medium"),
        ("retired-in-use", ["LIF-001"], "high"),
        ("nhi-risk", ["ACC-005"], "high"),
    ]


def test_not_checked_is_no_finding_and_nhi_risk_needs_a_deployment() -> None:
    unchecked = Reason.model_validate({"id": "OWN-004", "message": "not checked", "unchecked": True})
    acc = Reason(id="ACC-005", message="holds a client secret")
    assert kinds({}, decision([acc], [unchecked])) == []


def test_a_retired_version_in_use_without_the_rule_is_still_found() -> None:
    doc = {"lifecycle": {"retired": True, "retired_by": "alice@corp"}}
    found = identity_findings(ITEM, doc, decision([]), {})
    assert [(f.kind, f.reasons) for f in found] == [("retired-in-use", ["AUD-005"])]
    assert "retired by alice@corp" in found[0].message
    assert identity_findings(ITEM, {"lifecycle": {"retired": False}}, decision([]), {}) == []
