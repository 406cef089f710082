"""The audit and the owners report see identities (issue 29): a real MLflow server of this module's own,
the real OPA, a file: directory, `policygate audit run` and `policygate report owners`; the deployment
identity of an Azure ML online deployment through the replayed workspace (tests/fixtures/azure)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from policygate.api.app import create_app
from policygate.cli import app
from policygate.config import Settings
from policygate.demo.mlflow_server import MlflowServer
from policygate.demo.seed import ModelSpec, register
from tests.fixtures.azure.world import SYSTEM_PRINCIPAL, AzureWorld
from tests.support.tokens import bearer, token

runner = CliRunner()


def people(alice_active: bool = True) -> list[dict[str, Any]]:
    return [
        {"id": "alice@corp", "active": alice_active, "kind": "person", "groups": ["risk-ml"]},
        {"id": "bob@corp", "active": True, "kind": "person", "groups": ["model-risk"]},
        {"id": "build-bot@corp", "active": True, "kind": "service"},
    ]


@pytest.fixture(scope="module")
def identity_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with MlflowServer(tmp_path_factory.mktemp("identity-mlflow")) as server:
        yield server.url


@pytest.fixture
def registry(identity_server: str) -> str:
    client = MlflowClient(identity_server, registry_uri=identity_server)
    for rm in client.search_registered_models(max_results=1000):
        client.delete_registered_model(rm.name)
    return identity_server


@pytest.fixture
def directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    path = tmp_path / "directory.yaml"

    def write(people: list[dict[str, Any]], services: list[dict[str, Any]] | None = None) -> Path:
        path.write_text(yaml.safe_dump({"people": people, "services": services or []}))
        monkeypatch.setenv("POLICYGATE_DIRECTORY", f"file:{path}")
        monkeypatch.setenv("POLICYGATE_DIRECTORY_CACHE_S", "0")
        return path

    return write


def promote(mlflow_uri: str, db: str, spec: ModelSpec, target: str = "production") -> str:
    version = register(mlflow_uri, spec)
    result = runner.invoke(
        app, ["check", f"mlflow:models:/{spec.name}/{version}", "-t", target, "--mlflow-uri", mlflow_uri,
              "--db", db, "-f", "json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    MlflowClient(mlflow_uri).set_registered_model_alias(spec.name, "champion", version)
    return version


def audit(mlflow_uri: str, db: str, *args: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["audit", "run", "--mlflow-uri", mlflow_uri, "--db", db, "-f", "json", *args])
    assert result.exit_code in (0, 1, 2), result.output
    return result.exit_code, json.loads(result.stdout)


def kinds(run: dict[str, Any], name: str) -> list[tuple[str, list[str]]]:
    return sorted((f["kind"], f["reasons"]) for f in run["findings"] if f["name"] == name)


def test_an_owner_who_left_after_release_is_orphaned(
    registry: str, sqlite_url: str, directory: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    directory(people())
    promote(registry, sqlite_url, ModelSpec("fraud"))
    promote(registry, sqlite_url, ModelSpec("churn", use_case="customer churn"))
    code, clean = audit(registry, sqlite_url)
    assert code == 0 and clean["findings"] == [], clean["findings"]

    directory(people(alice_active=False))  # alice leaves; both models are hers
    # unchanged versions reuse their evidence (identities included) until POLICYGATE_AUDIT_FULL_EVERY_S
    monkeypatch.setenv("POLICYGATE_AUDIT_FULL_EVERY_S", "0.001")
    code, run = audit(registry, sqlite_url)
    assert code == 1
    for name in ("fraud", "churn"):
        assert kinds(run, name) == [("drift", ["OWN-004"]), ("orphaned", ["OWN-004"])]
    orphaned = next(f for f in run["findings"] if f["kind"] == "orphaned")
    assert "alice@corp" in orphaned["message"] and orphaned["severity"] == "high"
    assert run["findings_by_kind"]["orphaned"] == 2 and run["findings_by_kind"]["nhi-risk"] == 0

    text = runner.invoke(app, ["audit", "report", "--db", sqlite_url])
    assert "orphaned (2)" in text.stdout and "name an accountable owner" in text.stdout


def test_no_directory_is_never_orphaned(
    registry: str, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a directory OWN-004 warns 'not checked': that is no finding, and the report says so."""
    monkeypatch.delenv("POLICYGATE_DIRECTORY", raising=False)
    promote(registry, sqlite_url, ModelSpec("fraud"))
    code, run = audit(registry, sqlite_url)
    assert code == 0 and run["findings"] == []
    assert "OWN-004" in run["models"][0]["warnings"]
    report = runner.invoke(app, ["report", "owners", "--db", sqlite_url, "--format", "json"])
    assert report.exit_code == 0, report.output
    body = json.loads(report.stdout)
    assert body["directory"] is None
    assert [(r["owner"], r["owner_status"]) for r in body["rows"]] == [("alice@corp", "not checked")]


def test_report_owners_lists_every_model_in_use(
    registry: str, sqlite_url: str, directory: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runner.invoke(app, ["report", "owners", "--db", sqlite_url]).exit_code in (1, 2)  # no run yet
    staff = [*people(), {"id": "carol@corp", "active": True, "kind": "person", "groups": ["risk-ml"]}]
    directory(staff)
    promote(registry, sqlite_url, ModelSpec("fraud"))
    promote(registry, sqlite_url, ModelSpec("churn", owner="carol@corp", use_case="customer churn"))
    register(registry, ModelSpec("unaliased"))  # serving nothing: not in use, not in the report
    staff[-1]["active"] = False  # carol's account is disabled after the release
    directory(staff)
    monkeypatch.setenv("POLICYGATE_AUDIT_FULL_EVERY_S", "0.001")
    audit(registry, sqlite_url)

    result = runner.invoke(app, ["report", "owners", "--db", sqlite_url, "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == [
        "model", "target", "via", "owner", "owner_status", "risk_tier", "last_review", "last_reviewed_by",
        "next_review_due", "review_overdue", "counting_approvers", "deployment_identity",
        "deployment_identity_status", "findings",
    ]  # fmt: skip
    got = [
        (r["model"], r["via"], r["owner"], r["owner_status"], r["counting_approvers"], r["next_review_due"])
        for r in rows
    ]
    assert got == [
        ("mlflow:models:/churn/1", "alias champion", "carol@corp", "disabled", "bob@corp", ""),
        ("mlflow:models:/fraud/1", "alias champion", "alice@corp", "active", "bob@corp", ""),
    ]
    assert rows[0]["findings"] == "drift:OWN-004 orphaned:OWN-004" and rows[1]["findings"] == ""

    text = runner.invoke(app, ["report", "owners", "--db", sqlite_url])
    assert "carol@corp (disabled)" in text.stdout and "never reviewed" in text.stdout
    register_json = runner.invoke(app, ["register", "--db", sqlite_url, "-f", "json"])
    assert register_json.exit_code == 0, register_json.output
    statuses = {r["owner_now"]: r["owner_now_status"] for r in json.loads(register_json.stdout)["rows"]}
    assert statuses == {"carol@corp": "disabled", "alice@corp": "active"}

    settings = Settings(db_url=sqlite_url, mlflow_uri=registry, auth_required=True)
    reader = token(sqlite_url, "reviewer", "read")
    with TestClient(create_app(settings)) as api:
        assert api.get("/v1/reports/owners").status_code == 401
        answer = api.get("/v1/reports/owners", headers=bearer(reader))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["directory"] == "file"
        assert [(r["owner"], r["owner_status"]) for r in body["rows"]] == [
            ("carol@corp", "disabled"),
            ("alice@corp", "active"),
        ]


pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")


def azure_audit(world: AzureWorld, db: str) -> dict[str, Any]:
    result = runner.invoke(
        app,
        ["audit", "run", "--platform", "azureml", "--db", db, "-f", "json", "--target", "production"],
        obj=world.client_options(),
    )
    assert result.exit_code in (0, 1, 2), result.output
    run: dict[str, Any] = json.loads(result.stdout)
    return run


def deployment_findings(run: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return sorted(
        (f["kind"], f["reasons"])
        for f in run["findings"]
        if f["via"] == "online deployment fraud-scoring/blue"
    )


def test_a_deployment_identity_with_a_client_secret_is_an_nhi_risk(
    azure_with_foundry: AzureWorld, sqlite_url: str, directory: Callable[..., Path]
) -> None:
    service = {"id": SYSTEM_PRINCIPAL, "owners": ["alice@corp"]}
    directory(people(), [{**service, "credentials": [{"type": "secret", "expires": "2027-01-01"}]}])
    run = azure_audit(azure_with_foundry, sqlite_url)
    found = deployment_findings(run)
    assert ("nhi-risk", ["ACC-005"]) in found and ("drift", ["ACC-005"]) in found, found
    risk = next(f for f in run["findings"] if f["kind"] == "nhi-risk")
    assert "holds a client secret" in risk["message"]

    directory(people(), [{**service, "credentials": [{"type": "federated"}]}])
    found = deployment_findings(azure_audit(azure_with_foundry, sqlite_url))
    assert not any(kind in ("nhi-risk", "drift") for kind, _ in found), found
