"""The change on record: `check --ticket/--run-url` and `ticket`/`run_url` in POST /v1/decisions are
recorded in the evidence's request and shown by `log show` (text and JSON), against a real MLflow."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from policygate.api.app import create_app
from policygate.cli import app
from policygate.config import Settings
from policygate.decisions.log import DecisionLog
from policygate.demo.seed import ModelSpec, register
from tests.support.checkout import REGO, opa_binary
from tests.support.processes import record_of
from tests.support.served import Served

runner = CliRunner()
RUN = "https://ci.example.com/corp/models/actions/runs/42"


def model(mlflow_uri: str) -> str:
    spec = ModelSpec(f"change-{uuid.uuid4().hex[:8]}")
    return f"mlflow:models:/{spec.name}/{register(mlflow_uri, spec, train=True)}"  # with files: no INT-003


def check(mlflow_uri: str, db: str, ref: str, *extra: str):  # type: ignore[no-untyped-def]
    args = ["check", ref, "--target", "production", "--requested-by", "ci@corp", "--mlflow-uri", mlflow_uri]
    return runner.invoke(app, [*args, "--db", db, *extra])


def test_check_ticket_is_in_the_evidence_and_log_show(mlflow_server: str, sqlite_url: str) -> None:
    ref = model(mlflow_server)
    result = check(mlflow_server, sqlite_url, ref, "--ticket", "CHG-1", "--run-url", RUN, "--format", "json")
    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    assert (decision["ticket"], decision["run_url"]) == ("CHG-1", RUN)
    request = record_of(sqlite_url, decision["decision_id"])["evidence"]["request"]
    assert (request["ticket"], request["run_url"]) == ("CHG-1", RUN)

    shown = runner.invoke(app, ["log", "show", ref, "--db", sqlite_url])
    assert shown.exit_code == 0, shown.output
    assert f"ticket CHG-1  run {RUN}" in shown.stdout
    as_json = json.loads(runner.invoke(app, ["log", "show", ref, "--db", sqlite_url, "-f", "json"]).stdout)
    latest = as_json["latest_decisions"]["production"]
    assert (latest["ticket"], latest["run_url"]) == ("CHG-1", RUN)
    assert as_json["history"][0]["ticket"] == "CHG-1"


def test_without_a_ticket_nothing_is_claimed(mlflow_server: str, sqlite_url: str) -> None:
    ref = model(mlflow_server)
    decision = json.loads(check(mlflow_server, sqlite_url, ref, "--format", "json").stdout)
    request = record_of(sqlite_url, decision["decision_id"])["evidence"]["request"]
    assert request["ticket"] is None and request["run_url"] is None
    assert "ticket" not in runner.invoke(app, ["log", "show", ref, "--db", sqlite_url]).stdout


def test_github_format_records_this_run(
    mlflow_server: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    for name, value in {
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "corp/models",
        "GITHUB_RUN_ID": "4242",
    }.items():
        monkeypatch.setenv(name, value)
    ref = model(mlflow_server)
    result = check(mlflow_server, sqlite_url, ref, "--ticket", "CHG-7", "--format", "github")
    assert result.exit_code == 0, result.output
    url = "https://github.com/corp/models/actions/runs/4242"
    assert f"ticket `CHG-7` · [CI run]({url})" in summary.read_text()
    log = DecisionLog(sqlite_url)
    request = log.query(limit=1)[0]["evidence"]["request"]
    log.close()
    assert (request["ticket"], request["run_url"]) == ("CHG-7", url)
    # other formats read no CI variables: only what is passed is recorded
    plain = json.loads(check(mlflow_server, sqlite_url, ref, "--format", "json").stdout)
    assert plain["run_url"] is None


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--ticket", "CHG-1\nALLOW", "--ticket: String should match pattern"),
        ("--ticket", "x" * 257, "--ticket: String should have at most 256 characters"),
        ("--run-url", "javascript:alert(1)", "--run-url: String should match pattern"),
        ("--run-url", "https://ci/ run", "--run-url: String should match pattern"),
    ],
)
def test_bad_ticket_or_run_url_is_exit_2_and_nothing_recorded(
    mlflow_server: str, sqlite_url: str, option: str, value: str, message: str
) -> None:
    result = check(mlflow_server, sqlite_url, "mlflow:models:/any/1", option, value)
    assert result.exit_code == 2 and message in result.stderr
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()


@pytest.fixture
def api(mlflow_server: str, sqlite_url: str) -> Iterator[TestClient]:
    settings = Settings(db_url=sqlite_url, policy_dir=REGO, opa_bin=opa_binary(), mlflow_uri=mlflow_server)
    with TestClient(create_app(settings)) as client:
        yield client


def test_decisions_api_records_ticket_and_run_url(
    api: TestClient, mlflow_server: str, sqlite_url: str
) -> None:
    body = {
        "model": model(mlflow_server),
        "target": {"stage": "production"},
        "ticket": "CHG-2",
        "run_url": RUN,
    }
    decision = api.post("/v1/decisions", json=body).json()
    assert (decision["ticket"], decision["run_url"]) == ("CHG-2", RUN)
    request = record_of(sqlite_url, decision["decision_id"])["evidence"]["request"]
    assert (request["ticket"], request["run_url"]) == ("CHG-2", RUN)
    # a failed collection records them too (an error decision is an attempt on record)
    missing = {**body, "model": "mlflow:models:/no-such-model-xyz/1"}
    failed = api.post("/v1/decisions", json=missing).json()
    assert failed["outcome"] == "error" and failed["ticket"] == "CHG-2"
    assert record_of(sqlite_url, failed["decision_id"])["evidence"]["request"]["run_url"] == RUN


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ticket", "CHG\x1b[2J"),
        ("ticket", "t" * 257),
        ("run_url", "ftp://x"),
        ("run_url", "https://" + "u" * 2048),
    ],
)
def test_decisions_api_refuses_bad_values_with_422(api: TestClient, field: str, value: str) -> None:
    body = {"model": "mlflow:models:/m/1", "target": {"stage": "production"}, field: value}
    resp = api.post("/v1/decisions", json=body)
    assert resp.status_code == 422 and resp.json()["message"].startswith(f"{field}:")
    assert api.get("/v1/decisions").json()["decisions"] == []


def test_check_server_mode_sends_them(mlflow_server: str, sqlite_url: str) -> None:
    ref = model(mlflow_server)
    with Served({"POLICYGATE_DB_URL": sqlite_url, "MLFLOW_TRACKING_URI": mlflow_server}) as server:
        result = runner.invoke(
            app,
            ["check", ref, "-t", "production", "--server", server.base, "--ticket", "CHG-3", "-f", "json"],
        )
        assert result.exit_code == 0, result.output
        shown = requests.get(
            f"{server.base}/v1/decisions/{json.loads(result.stdout)['decision_id']}", timeout=10
        )
    assert shown.json()["ticket"] == "CHG-3"
    assert record_of(sqlite_url, shown.json()["decision_id"])["evidence"]["request"]["ticket"] == "CHG-3"
