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

runner = CliRunner()
RUN = "https://ci.example.com/corp/models/actions/runs/7"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(MLflow URL, log URL): fraud gated with CHG-1, sneaky aliased by hand, churn's owner changed."""
    db = f"sqlite:///{tmp_path_factory.mktemp('register')}/decisions.db"
    with MlflowServer(tmp_path_factory.mktemp("register-mlflow")) as server:
        uri = server.url
        client = MlflowClient(uri, registry_uri=uri)
        for name in ("fraud", "churn"):
            version = register(uri, ModelSpec(name), train=True)  # with files: INT-003 passes
            ref = f"mlflow:models:/{name}/{version}"
            args = ["check", ref, "-t", "production", "--mlflow-uri", uri, "--db", db, "-f", "json"]
            args += ["--requested-by", "ci@corp", "--ticket", f"CHG-{name}", "--run-url", RUN]
            result = runner.invoke(app, args)
            assert result.exit_code == 0, result.output
            client.set_registered_model_alias(name, "champion", version)
        client.set_registered_model_tag("churn", "owner", "bob@corp")  # after its release
        sneaky = register(uri, ModelSpec("sneaky"), train=True)
        client.set_registered_model_alias("sneaky", "champion", sneaky)
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
    table = list(
        csv.DictReader(io.StringIO(runner.invoke(app, ["register", "--db", db, "-f", "csv"]).stdout))
    )
    assert {r["ticket"] for r in table} == {"CHG-fraud", "CHG-churn", ""}


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
