"""The governed register against a real MLflow server of its own: a gated model with its change ticket,
an alias set by hand (bypass), an owner changed after release; `policygate register` (text, json, csv)
and GET /v1/register answer from the latest audit run with one row per model version in use."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from policygate.api.app import create_app
from policygate.cli import app
from policygate.config import Settings
from policygate.demo.mlflow_server import MlflowServer
from policygate.demo.seed import ModelSpec, register
from tests.support.checkout import REGO, opa_binary
from tests.support.governed import RUN, aliased_by_hand, released
from tests.support.tokens import bearer, token

runner = CliRunner()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(MLflow URL, log URL): fraud gated with CHG-1, sneaky aliased by hand, churn's owner changed."""
    db = f"sqlite:///{tmp_path_factory.mktemp('register')}/decisions.db"
    with MlflowServer(tmp_path_factory.mktemp("register-mlflow")) as server:
        uri = server.url
        for name in ("fraud", "churn"):
            released(uri, db, ModelSpec(name), ticket=f"CHG-{name}")  # with files: INT-003 passes
        MlflowClient(uri).set_registered_model_tag("churn", "owner", "bob@corp")  # after its release
        aliased_by_hand(uri, ModelSpec("sneaky"))
        audited = runner.invoke(app, ["audit", "run", "--mlflow-uri", uri, "--db", db, "-f", "json"])
        assert audited.exit_code in (1, 2), audited.output
        yield uri, db


def rows(db: str, *extra: str) -> dict[str, dict[str, Any]]:
    result = runner.invoke(app, ["register", "--db", db, "-f", "json", *extra])
    assert result.exit_code == 0, result.output
    return {r["model"].split("/")[-2]: r for r in json.loads(result.stdout)["rows"]}


def test_one_register_call_answers_for_every_model_in_use(world: tuple[str, str]) -> None:
    _, db = world
    found = rows(db)
    assert sorted(found) == ["churn", "fraud", "sneaky"]
    fraud = found["fraud"]
    assert (fraud["target"], fraud["via"], fraud["outcome"]) == ("production", "alias champion", "allow")
    assert (fraud["owner_at_release"], fraud["owner_now"], fraud["owner_changed"]) == (
        "alice@corp",
        "alice@corp",
        False,
    )
    assert (fraud["ticket"], fraud["run_url"], fraud["requested_by"]) == ("CHG-fraud", RUN, "ci@corp")
    assert fraud["policy_revision"].startswith("sha256:") and fraud["commit"] and fraud["datasets"]
    assert fraud["run"].startswith("mlflow:") and fraud["findings"] == []
    # the approval that counted (the MLflow tag's: not recorded through policygate, so unverified, no id)
    assert [(a["by"], a["stage"], a["verified"], a["id"]) for a in fraud["approvals"]] == [
        ("bob@corp", "production", False, None)
    ]
    assert fraud["approvals"][0]["at"] and fraud["withdrawn"] == [] and fraud["waivers"] == []
    sneaky = found["sneaky"]  # in use, never gated: in the register all the same
    assert sneaky["decision_id"] is None and sneaky["outcome"] is None
    assert sneaky["findings"] == ["bypass:AUD-001"] and sneaky["owner_now"] == "alice@corp"
    churn = found["churn"]
    assert (churn["owner_at_release"], churn["owner_now"], churn["owner_changed"]) == (
        "alice@corp",
        "bob@corp",
        True,
    )
    assert rows(db, "--target", "staging") == {}


def test_text_and_csv(world: tuple[str, str]) -> None:
    _, db = world
    text = runner.invoke(app, ["register", "--db", db]).stdout
    assert "3 model versions in use" in text
    assert "NONE: no release decision (bypass)" in text and "OWNER CHANGED SINCE RELEASE" in text
    assert "ticket CHG-fraud" in text
    assert "approvals  bob@corp at " in text and "(unverified)" in text and "waivers    -" in text
    table = list(
        csv.DictReader(io.StringIO(runner.invoke(app, ["register", "--db", db, "-f", "csv"]).stdout))
    )
    assert {r["ticket"] for r in table} == {"CHG-fraud", "CHG-churn", ""}
    assert {r["approvals"].split(" at ")[0] for r in table} == {"bob@corp", ""}
    assert {r["withdrawn"] for r in table} == {r["waivers"] for r in table} == {""}


def test_the_api_route_and_bad_input(world: tuple[str, str]) -> None:
    uri, db = world
    settings = Settings(db_url=db, mlflow_uri=uri, policy_dir=REGO, opa_bin=opa_binary())
    with TestClient(create_app(settings)) as client:
        answer = client.get("/v1/register", params={"target": "production"}).json()
        assert len(answer["rows"]) == 3 and answer["run_id"]
        assert client.get("/v1/register", params={"target": "prod"}).status_code == 422
    bad = runner.invoke(app, ["register", "--db", db, "--target", "prod"])
    assert bad.exit_code == 2 and "unknown stage" in bad.stderr


def test_no_audit_run_yet_is_exit_1_and_404(sqlite_url: str) -> None:
    settings = Settings(db_url=sqlite_url, policy_dir=REGO, opa_bin=opa_binary())
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/register").status_code == 404
    result = runner.invoke(app, ["register", "--db", sqlite_url])
    assert result.exit_code == 1 and "no audit run" in result.stderr


def latest_run_id(db: str) -> str:
    result = runner.invoke(app, ["audit", "report", "--db", db, "-f", "json"])
    run_id: str = json.loads(result.stdout)["run_id"]
    return run_id


def test_refresh_runs_an_audit_first(world: tuple[str, str]) -> None:
    uri, db = world
    before = latest_run_id(db)
    result = runner.invoke(app, ["register", "--refresh", "--mlflow-uri", uri, "--db", db, "-f", "json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["run_id"] != before and answer["run_id"] == latest_run_id(db)
    assert len(answer["rows"]) == 3


def test_an_auditor_token_triggers_a_run_a_read_token_reads_it(world: tuple[str, str]) -> None:
    uri, db = world
    auditor, reader = token(db, "auditor@corp", "audit,read"), token(db, "viewer@corp", "read")
    settings = Settings(db_url=db, mlflow_uri=uri, policy_dir=REGO, opa_bin=opa_binary(), auth_required=True)
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/audit/runs").status_code == 401
        refused = client.post("/v1/audit/runs", headers=bearer(reader))
        assert refused.status_code == 403 and "'audit' scope" in refused.text
        started = client.post("/v1/audit/runs", headers=bearer(auditor))
        assert started.status_code == 201, started.text
        run = started.json()
        assert run["models_audited"] == 3 and run["status"] and run["policy_revision"].startswith("sha256:")
        latest = client.get("/v1/audit", headers=bearer(reader)).json()
        assert latest["run_id"] == run["run_id"]
        register_now = client.get("/v1/register", headers=bearer(reader)).json()
        assert register_now["run_id"] == run["run_id"] and len(register_now["rows"]) == 3


@pytest.mark.parametrize(
    ("overrides", "tags", "expected"),
    [
        ({}, {"ticket": "CHG-7", "run_url": RUN}, ("CHG-7", RUN)),
        # a mapping of the organisation's own tag names; a value that is no URL is left out
        (
            {"webhook_ticket_tag": "change_id"},
            {"change_id": "CHG-8", "run_url": "not a url"},
            ("CHG-8", None),
        ),
        ({"webhook_ticket_tag": "", "webhook_run_url_tag": ""}, {"ticket": "CHG-9"}, (None, None)),
    ],
)
def test_a_webhook_decision_records_the_change_its_version_tags_name(
    mlflow_server: str,
    sqlite_url: str,
    overrides: dict[str, Any],
    tags: dict[str, str],
    expected: tuple[str | None, str | None],
) -> None:
    import uuid

    from tests.support.webhooks import SECRET, alias_event, delivery, eventually

    name = f"wh-change-{uuid.uuid4().hex[:6]}"
    version = register(mlflow_server, ModelSpec(name))
    client = MlflowClient(mlflow_server, registry_uri=mlflow_server)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    settings = Settings(
        db_url=sqlite_url,
        policy_dir=REGO,
        opa_bin=opa_binary(),
        mlflow_uri=mlflow_server,
        mlflow_webhook_secret=SECRET,  # type: ignore[arg-type]
        **overrides,
    )
    with TestClient(create_app(settings)) as api:
        raw, headers = delivery(alias_event(name, version))
        assert api.post("/v1/webhooks/mlflow", content=raw, headers=headers).status_code == 202
        decision_id = eventually(
            lambda: dict(client.get_model_version(name, version).tags).get("policygate.decision_id")
        )
        decision = api.get(f"/v1/decisions/{decision_id}").json()
        assert (decision["ticket"], decision["run_url"]) == expected
        record = api.get(f"/v1/models/mlflow:models:/{name}/{version}/record").json()
        latest = record["latest_decisions"]["production"]
        assert (latest["ticket"], latest["run_url"]) == expected
