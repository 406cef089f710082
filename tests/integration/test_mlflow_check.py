"""`policygate check` and POST /v1/decisions against a real MLflow server with real registry state."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from policygate.api.app import create_app
from policygate.cli import app
from policygate.config import Settings
from policygate.decisions.log import DecisionLog
from policygate.demo.seed import ModelSpec, register
from tests.support.checkout import REGO, opa_binary

runner = CliRunner()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def check(mlflow_uri: str, db: str, ref: str, *extra: str):  # type: ignore[no-untyped-def]
    args = ["check", ref, "--target", "production", "--requested-by", "ci@corp", "--mlflow-uri", mlflow_uri]
    return runner.invoke(app, [*args, "--db", db, *extra])


def decide(mlflow_uri: str, db: str, spec: ModelSpec) -> dict:  # type: ignore[type-arg]
    version = register(mlflow_uri, spec)
    result = check(mlflow_uri, db, f"mlflow:models:/{spec.name}/{version}", "--format", "json")
    assert result.exit_code in (0, 1, 2), result.output
    decision: dict = json.loads(result.stdout)  # type: ignore[type-arg]
    assert result.exit_code == {"allow": 0, "deny": 1, "error": 2}[decision["outcome"]]
    return decision


def test_compliant_model_is_allowed(mlflow_server: str, sqlite_url: str) -> None:
    decision = decide(mlflow_server, sqlite_url, ModelSpec(unique("fraud")))
    assert decision["outcome"] == "allow", decision["reasons"]
    assert decision["requested_by"] == "ci@corp"


@pytest.mark.parametrize(
    ("rule_id", "changes"),
    [
        ("LIN-001", {"with_run": False}),
        ("LIN-002", {"run_status": "FAILED"}),
        ("LIN-003", {"dataset": False}),
        ("LIN-004", {"commit": None}),
        ("OWN-001", {"owner": None}),
        ("OWN-002", {"risk_tier": None}),
        ("OWN-002", {"use_case": None}),
        ("APR-001", {"approvals": []}),
        ("APR-001", {"risk_tier": "high"}),
        ("APR-002", {"approvals": [("bob@corp", "production", 0), ("alice@corp", "production", 0)]}),
        ("APR-002", {"approvals": [("bob@corp", "production", 0), ("dana@corp", "production", 0)]}),
        ("APR-003", {"approvals": [("bob@corp", "production", 120)]}),
        ("EVD-001", {"approvals_raw": "[{'by': 'bob'}"}),
    ],
)
def test_each_defect_in_real_registry_state_is_denied(
    rule_id: str,
    changes: dict,
    mlflow_server: str,
    sqlite_url: str,  # type: ignore[type-arg]
) -> None:
    decision = decide(mlflow_server, sqlite_url, ModelSpec(unique("m"), **changes))
    assert decision["outcome"] == "deny"
    assert rule_id in [r["id"] for r in decision["reasons"]]


def test_alias_resolves_and_is_recorded(mlflow_server: str, sqlite_url: str, tmp_path: Path) -> None:
    spec = ModelSpec(unique("aliased"), alias="champion")
    version = register(mlflow_server, spec)
    collected = runner.invoke(
        app, ["evidence", "collect", f"mlflow:models:/{spec.name}@champion", "--mlflow-uri", mlflow_server]
    )
    assert collected.exit_code == 0, collected.output
    evidence = json.loads(collected.stdout)
    assert evidence["subject"]["ref"] == f"mlflow:models:/{spec.name}/{version}"
    assert evidence["subject"]["aliases"] == ["champion"]
    assert evidence["lineage"]["run"]["status"] == "FINISHED"
    assert evidence["lineage"]["code"]["commit"] and evidence["lineage"]["datasets"][0]["digest"]
    assert evidence["ownership"] == {
        "owner": "alice@corp",
        "team": "risk-ml",
        "use_case": "card fraud scoring",
        "risk_tier": "medium",
    }
    # the seeded version has files at its source (hashed, so INT-003 is satisfied): no gap at all
    assert evidence["collection"]["gaps"] == [] and evidence["collection"]["sources"][0]["ok"] is True
    assert {f["path"] for f in evidence["artifacts"]["files"]} == {"MLmodel", "weights.txt"}
    # the collected evidence replays to the same outcome
    path = tmp_path / "evidence.json"
    path.write_text(collected.stdout)
    assert runner.invoke(app, ["evaluate", str(path), "--db", sqlite_url]).exit_code == 0


def test_version_tags_override_registered_model_tags(mlflow_server: str, sqlite_url: str) -> None:
    from mlflow.tracking import MlflowClient

    spec = ModelSpec(unique("override"))
    version = register(mlflow_server, spec)
    MlflowClient(mlflow_server).set_model_version_tag(spec.name, version, "risk_tier", "high")
    decision = json.loads(
        check(mlflow_server, sqlite_url, f"mlflow:models:/{spec.name}/{version}", "--format", "json").stdout
    )
    assert [r["id"] for r in decision["reasons"]] == ["APR-001"]  # high risk needs two approvals


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("mlflow:models:/does-not-exist-xyz/1", "not found"),
        ("mlflow:models:/does-not-exist-xyz@champion", "not found"),
    ],
)
def test_unknown_model_or_alias_is_an_error(
    mlflow_server: str, sqlite_url: str, ref: str, expected: str
) -> None:
    result = check(mlflow_server, sqlite_url, ref)
    assert result.exit_code == 2
    assert result.stdout.startswith("ERROR")
    assert "ERR-SOURCE" in result.stdout and "mlflow" in result.stdout and expected in result.stdout
    log = DecisionLog(sqlite_url)
    assert log.query(outcome="error")[0]["decision"]["subject"]["ref"] == ref.replace("xyz@", "xyz@")
    log.close()


def test_mlflow_down_is_an_error_within_the_bound(sqlite_url: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = check(f"http://127.0.0.1:{port}", sqlite_url, "mlflow:models:/fraud/1", "--format", "json")
    assert result.exit_code == 2
    decision = json.loads(result.stdout)
    assert decision["outcome"] == "error" and decision["allow"] is False
    assert "unreachable" in decision["reasons"][0]["message"]


def test_malformed_ref_and_unknown_stage_exit_2(mlflow_server: str, sqlite_url: str) -> None:
    bad_ref = check(mlflow_server, sqlite_url, "models:/fraud/7")
    assert bad_ref.exit_code == 2 and "malformed model reference" in bad_ref.stderr
    bad_stage = runner.invoke(
        app, ["check", "mlflow:models:/fraud/7", "--target", "prod", "--db", sqlite_url]
    )
    assert bad_stage.exit_code == 2 and "unknown stage 'prod'" in bad_stage.stderr


def test_junit_lists_failing_rules(mlflow_server: str, sqlite_url: str) -> None:
    spec = ModelSpec(unique("junit"), owner=None, commit=None)
    version = register(mlflow_server, spec)
    result = check(mlflow_server, sqlite_url, f"mlflow:models:/{spec.name}/{version}", "--format", "junit")
    assert result.exit_code == 1
    suite = ET.fromstring(result.stdout).find("testsuite")
    assert suite is not None
    failing = {
        case.get("name", "").split()[0] for case in suite.iter("testcase") if case.find("failure") is not None
    }
    assert {"OWN-001", "LIN-004"} <= failing
    passing = {
        case.get("name", "").split()[0] for case in suite.iter("testcase") if case.find("failure") is None
    }
    assert "LIN-001" in passing


def test_github_format_annotates_and_writes_the_summary(
    mlflow_server: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    spec = ModelSpec(unique("gh"), approvals=[])
    version = register(mlflow_server, spec)
    result = check(mlflow_server, sqlite_url, f"mlflow:models:/{spec.name}/{version}", "--format", "github")
    assert result.exit_code == 1
    assert result.stdout.startswith("::error title=policygate APR-001::")
    assert "**APR-001**" in summary.read_text()


@pytest.fixture
def api(mlflow_server: str, sqlite_url: str) -> Iterator[TestClient]:
    settings = Settings(db_url=sqlite_url, policy_dir=REGO, opa_bin=opa_binary(), mlflow_uri=mlflow_server)
    with TestClient(create_app(settings)) as client:
        yield client


def test_decisions_api_decides_and_lists_newest_first(api: TestClient, mlflow_server: str) -> None:
    spec = ModelSpec(unique("api"), alias="champion")
    version = register(mlflow_server, spec)
    body = {
        "model": f"mlflow:models:/{spec.name}@champion",
        "target": {"stage": "production"},
        "requested_by": "ci",
    }
    first = api.post("/v1/decisions", json=body)
    assert first.status_code == 200 and first.json()["outcome"] == "allow"
    second = api.post("/v1/decisions", json={**body, "target": {"stage": "staging"}}).json()
    listed = api.get(
        "/v1/decisions", params={"model": f"mlflow:models:/{spec.name}/{version}", "limit": 10}
    ).json()
    assert [d["decision_id"] for d in listed["decisions"]] == [
        second["decision_id"],
        first.json()["decision_id"],
    ]
    page = api.get(
        "/v1/decisions", params={"model": f"mlflow:models:/{spec.name}/{version}", "limit": 1}
    ).json()
    older = api.get("/v1/decisions", params={"limit": 1, "cursor": page["next_cursor"]}).json()
    assert older["decisions"][0]["decision_id"] == first.json()["decision_id"]


def test_decisions_api_refuses_bad_refs_with_422(api: TestClient) -> None:
    resp = api.post("/v1/decisions", json={"model": "fraud:7", "target": {"stage": "production"}})
    assert resp.status_code == 422 and "malformed model reference" in resp.json()["message"]
    resp = api.post("/v1/decisions", json={"model": "mlflow:models:/m/1", "target": {"stage": "live"}})
    assert resp.status_code == 422 and resp.json()["message"].startswith("target.stage")
    assert api.get("/v1/decisions").json()["decisions"] == []
