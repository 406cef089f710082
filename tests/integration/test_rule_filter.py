"""Dry-run findings are visible (log show, CSV) and every finding can be filtered by rule id
(`GET /v1/decisions?rule=`, `log export --rule`), on SQLite and PostgreSQL, with a real OPA."""

from __future__ import annotations

import copy
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from policygate.api.app import create_app
from policygate.cli import app
from policygate.config import Settings
from tests.integration.test_policy_rollout import walkthrough
from tests.support.checkout import load_example, opa_binary

runner = CliRunner()
REF = "mlflow:models:/fraud-detector/7"


@pytest.fixture
def client(log_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The guide's CHG-001 in dryrun and LIN-004 in warn mode."""
    policy_dir = walkthrough(tmp_path, {"CHG-001": "dryrun", "LIN-004": "warn"})
    settings = Settings(db_url=log_url, policy_dir=policy_dir, opa_bin=opa_binary())
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def decided(client: TestClient) -> dict[str, list[str]]:
    """Decision ids by what they found: two dry-run CHG-001, one warn LIN-004, one deny APR-002, one clean."""
    no_ticket = load_example("compliant")
    no_ticket["request"]["ticket"] = None
    docs = {
        "dry": [no_ticket, copy.deepcopy(no_ticket)],
        "warn": [load_example("LIN-004")],
        "deny": [load_example("APR-002")],
        "clean": [load_example("compliant")],
    }
    out: dict[str, list[str]] = {}
    for kind, evidences in docs.items():
        for evidence in evidences:
            resp = client.post("/v1/evaluate", json={"evidence": evidence})
            assert resp.status_code == 200, resp.text
            out.setdefault(kind, []).append(resp.json()["decision_id"])
    return out


def ids(client: TestClient, query: str) -> list[str]:
    resp = client.get(f"/v1/decisions?{query}")
    assert resp.status_code == 200, resp.text
    return [d["decision_id"] for d in resp.json()["decisions"]]


def test_the_api_filters_by_any_kind_of_finding(client: TestClient, decided: dict[str, list[str]]) -> None:
    assert ids(client, "rule=CHG-001") == decided["dry"][::-1]  # newest first; found only as dry-run
    assert ids(client, "rule=LIN-004") == decided["warn"]  # a warning
    assert ids(client, "rule=apr-002") == decided["deny"]  # a deny reason; any case
    assert ids(client, "rule=ACC-001") == []
    first = client.get("/v1/decisions?rule=CHG-001&limit=1").json()
    assert [d["decision_id"] for d in first["decisions"]] == [decided["dry"][1]] and first["next_cursor"]
    second = client.get(f"/v1/decisions?rule=CHG-001&limit=1&cursor={first['next_cursor']}").json()
    assert [d["decision_id"] for d in second["decisions"]] == [decided["dry"][0]]
    assert second["next_cursor"] is None


@pytest.mark.parametrize("bad", ["LIN", "lin-4", "%", "LIN_004"])
def test_a_bad_rule_id_is_422(client: TestClient, decided: dict[str, list[str]], bad: str) -> None:
    resp = client.get("/v1/decisions", params={"rule": bad})
    assert resp.status_code == 422 and "rule: " in resp.json()["message"] and "is not a rule id" in resp.text


def test_export_filters_by_rule_and_csv_shows_dry_run_findings(
    log_url: str, decided: dict[str, list[str]]
) -> None:
    result = runner.invoke(app, ["log", "export", "--format", "csv", "--rule", "CHG-001", "--db", log_url])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["decision_id"] for r in rows] == decided["dry"]  # oldest first
    assert all(r["dryrun"] == "CHG-001" and r["outcome"] == "allow" for r in rows)
    header = result.stdout.splitlines()[0].split(",")
    assert header[-1] == "dryrun" and header[:3] == ["seq", "recorded_at", "decision_id"]
    events = runner.invoke(app, ["log", "export", "--rule", "lin-004", "--db", log_url])
    assert [json.loads(line)["decision_id"] for line in events.stdout.splitlines()] == decided["warn"]
    bad = runner.invoke(app, ["log", "export", "--rule", "LIN", "--db", log_url])
    assert bad.exit_code == 2 and "--rule: 'LIN' is not a rule id" in bad.stderr


def test_log_show_lists_warnings_and_dry_run_findings(log_url: str, decided: dict[str, list[str]]) -> None:
    result = runner.invoke(app, ["log", "show", REF, "--db", log_url])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    history = {d: next(ln for ln in lines if d in ln) for ids in decided.values() for d in ids}
    assert "dry:CHG-001" in history[decided["dry"][0]]
    assert "warn:LIN-004" in history[decided["warn"][0]]
    assert "APR-002" in history[decided["deny"][0]]
    record = json.loads(runner.invoke(app, ["log", "show", REF, "--db", log_url, "-f", "json"]).stdout)
    assert any(d["dryrun"] == ["CHG-001"] for d in record["history"])


def test_the_export_filter_keeps_every_match_across_batches(log_url: str, client: Any) -> None:
    """More matches than one read batch: none lost, none doubled."""
    from policygate.decisions.log import DecisionLog

    no_ticket = load_example("compliant")
    no_ticket["request"]["ticket"] = None
    made = [client.post("/v1/evaluate", json={"evidence": no_ticket}).json()["decision_id"] for _ in range(7)]
    log = DecisionLog(log_url)
    try:
        found = [r.decision_id for r in log.records(kind="decision", rule="CHG-001", batch_size=3)]
        page = log.query(rule="CHG-001", limit=5)
    finally:
        log.close()
    assert found == made and [r["decision"]["decision_id"] for r in page] == made[::-1][:5]
