"""Every example evidence document decides as its name says, on the real OPA."""

from __future__ import annotations

import re

import pytest

from policygate.decisions.log import DecisionLog
from policygate.decisions.service import DecisionService
from policygate.engine.opa import OpaEngine
from policygate.evidence import EvidenceV1
from tests.support.checkout import EXAMPLES, load_example

RULE_IDS = [
    "LIN-001", "LIN-002", "LIN-003", "LIN-004",
    "OWN-001", "OWN-002", "OWN-003", "OWN-004",
    "APR-001", "APR-002", "APR-003", "APR-004",
    "ACC-001", "ACC-002", "ACC-003", "ACC-004", "ACC-005",
    "EVD-001",
    "INT-001", "INT-002", "INT-003",
    "LIF-001", "LIF-002",
]  # fmt: skip


def test_every_rule_has_an_example() -> None:
    names = {p.stem for p in EXAMPLES.glob("*.json") if "." not in p.stem}  # not ID.deny-*/ID.allow-*
    assert names == {"compliant", *RULE_IDS}


def test_compliant_is_allowed(opa: OpaEngine, decision_log: DecisionLog) -> None:
    decision = DecisionService(opa, decision_log).evaluate(
        EvidenceV1.model_validate(load_example("compliant"))
    )
    assert decision.outcome == "allow" and decision.allow
    assert decision.reasons == [] and decision.warnings == []
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", decision.policy_revision or "")
    assert decision.subject == {
        "ref": "mlflow:models:/fraud-detector/7",
        "platform": "mlflow",
        "name": "fraud-detector",
        "version": "7",
    }


WARN_BY_DEFAULT = {"INT-001"}  # rego/data.json ships it in warn mode


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_example_breaks_exactly_its_rule(rule_id: str, opa: OpaEngine, decision_log: DecisionLog) -> None:
    decision = DecisionService(opa, decision_log).evaluate(EvidenceV1.model_validate(load_example(rule_id)))
    findings = decision.warnings if rule_id in WARN_BY_DEFAULT else decision.reasons
    assert [r.id for r in findings] == [rule_id]
    if rule_id in WARN_BY_DEFAULT:
        assert decision.outcome == "allow" and decision.reasons == []
        return
    assert decision.outcome == "deny" and decision.allow is False
    reason = decision.reasons[0]
    assert reason.message and reason.title and reason.controls
    assert reason.severity in {"low", "medium", "high", "critical"}
    stored = decision_log.get(decision.decision_id)
    assert stored is not None and stored["decision"]["outcome"] == "deny"
    assert stored["evidence"]["subject"]["ref"] == decision.subject["ref"]  # type: ignore[index]
