"""`evaluate --explain` and `POST /v1/evaluate?explain=true`: why, rule by rule, from the real OPA,
without changing the decision that is recorded."""

from __future__ import annotations

import json
import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from policygate.api.app import create_app
from policygate.cli import app
from policygate.config import Settings
from tests.support.checkout import EXAMPLES, REGO, opa_binary
from tests.support.processes import record_of

runner = CliRunner()


def evaluate(path: Path, sqlite_url: str, *extra: str, **env: str) -> Any:
    return runner.invoke(
        app, ["evaluate", str(path), "--db", sqlite_url, "--explain", *extra], env=env or None
    )


def recorded(sqlite_url: str, decision_id: str) -> dict[str, Any]:
    decision: dict[str, Any] = record_of(sqlite_url, decision_id)["decision"]
    return decision


def test_text_explains_a_denial_without_reading_rego(sqlite_url: str) -> None:
    result = evaluate(EXAMPLES / "APR-002.json", sqlite_url)
    assert result.exit_code == 1
    out = result.stdout
    verdict, why = out.split("\nWHY\n")
    assert verdict.startswith("DENY: mlflow:models:/fraud-detector/7 -> production")
    assert "may not go to production: denied by APR-002 (Separation of duties broken)" in why
    assert "DENY APR-002 — Separation of duties broken  [severity high; mode enforce]" in why
    assert "Rule: An approval for the requested stage was given by the model's owner" in why
    assert 'Finding: Approval for production by "Alice@Example.com" does not count' in why
    assert 'ownership.owner      = "alice@example.com"' in why
    assert 'lineage.run.user     = "alice@example.com"' in why
    assert '"by": "Alice@Example.com"' in why  # the approvals, item by item
    # from OPA's own trace: the conditions that held, the variables they bound
    assert "Conditions that held, from OPA's trace (rego/policygate/approval.rego:" in why
    assert "roles := sod_conflicts(a.by)" in why and 'roles = ["owner", "run author"]' in why
    assert "count(roles) > 0" in why


def test_facts_the_rule_used_are_shown(sqlite_url: str) -> None:
    result = evaluate(EXAMPLES / "APR-001.json", sqlite_url, "--format", "json")
    why = json.loads(result.stdout)["explanation"]
    [reason] = why["reasons"]
    assert reason["id"] == "APR-001" and reason["kind"] == "deny"
    assert [c["expression"] for c in reason["conditions"]] == [
        "count(counted_approvers) < required_approvals"
    ]
    assert reason["facts"] == {"counted_approvers": [], "required_approvals": 1}
    assert why["trace"].startswith("opa eval --explain full")


def test_private_helpers_are_not_shown_as_policy_facts(sqlite_url: str) -> None:
    """LIN-003's body reads `_lin003_problems`: a private helper (leading underscore), not a fact."""
    result = evaluate(EXAMPLES / "LIN-003.json", sqlite_url, "--format", "json")
    [reason] = json.loads(result.stdout)["explanation"]["reasons"]
    assert reason["id"] == "LIN-003" and "some msg in _lin003_problems" in [
        c["expression"] for c in reason["conditions"]
    ]
    assert not [name for name in reason["facts"] if name.startswith("_")], reason["facts"]
    text = evaluate(EXAMPLES / "LIN-003.json", sqlite_url).stdout
    assert "_lin003_problems =" not in text


def test_json_adds_explanation_and_the_recorded_decision_is_unchanged(sqlite_url: str) -> None:
    result = evaluate(EXAMPLES / "LIN-004.json", sqlite_url, "--format", "json")
    assert result.exit_code == 1
    answer = json.loads(result.stdout)
    why = answer.pop("explanation")
    assert answer == recorded(sqlite_url, answer["decision_id"])
    [reason] = why["reasons"]
    assert reason["fields"] == [
        {"path": "lineage.code.commit", "present": False, "value": None, "gap": False}
    ]
    assert reason["conditions"][0]["expression"] == 'not present(ev(["lineage", "code", "commit"]))'


def test_a_gap_reported_by_the_sources_is_flagged(sqlite_url: str, tmp_path: Path) -> None:
    doc = json.loads((EXAMPLES / "LIN-004.json").read_text())
    doc["collection"]["gaps"] = ["lineage.code.commit"]
    path = tmp_path / "gap.json"
    path.write_text(json.dumps(doc))
    result = evaluate(path, sqlite_url)
    assert "lineage.code.commit = (missing)  [reported missing by the sources]" in result.stdout


def test_allow_and_machine_formats(sqlite_url: str) -> None:
    result = evaluate(EXAMPLES / "compliant.json", sqlite_url)
    assert result.exit_code == 0
    assert "may go to production: no enforced rule denied it." in result.stdout
    junit = evaluate(EXAMPLES / "APR-002.json", sqlite_url, "--format", "junit")
    assert junit.exit_code == 1
    ET.fromstring(junit.stdout)  # stdout stays valid XML; the explanation goes to stderr
    assert "DENY APR-002" in junit.stderr


def test_an_error_decision_is_explained_as_fail_closed(sqlite_url: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = evaluate(EXAMPLES / "compliant.json", sqlite_url, POLICYGATE_OPA_URL=f"http://127.0.0.1:{port}")
    assert result.exit_code == 2
    assert "Could not decide on mlflow:models:/fraud-detector/7 -> production" in result.stdout
    assert "treat this as a deny" in result.stdout and "ERROR ERR-UNREACHABLE" in result.stdout


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    settings = Settings(db_url=sqlite_url, policy_dir=REGO, opa_bin=opa_binary())
    with TestClient(create_app(settings)) as c:
        yield c


def test_api_explain_is_optional_and_not_recorded(client: TestClient) -> None:
    evidence = json.loads((EXAMPLES / "APR-003.json").read_text())
    plain = client.post("/v1/evaluate", json={"evidence": evidence})
    assert plain.status_code == 200 and "explanation" not in plain.json()
    resp = client.post("/v1/evaluate?explain=true", json={"evidence": evidence})
    assert resp.status_code == 200
    answer = resp.json()
    why = answer.pop("explanation")
    assert client.get(f"/v1/decisions/{answer['decision_id']}").json() == answer
    [reason] = why["reasons"]
    assert reason["id"] == "APR-003" and reason["title"] == "Stale approval"
    assert {f["path"]: f["value"] for f in reason["fields"]}["subject.created_at"] == "2026-11-01T09:30:00Z"
    bound = {k: v for c in reason["conditions"] for k, v in c["bindings"].items()}
    assert bound["why"].startswith("predates the model version itself")
    assert client.post("/v1/evaluate?explain=maybe", json={"evidence": evidence}).status_code == 422
