"""`policygate check azureml:...` end to end: real SDK objects from Azure's wire shapes, real OPA, the log.

The only fake is the HTTP transport under the Azure SDKs (tests/fixtures/azure); it reaches
the CLI through its in-process seam, Click's context object (credential, transport, client options).
MLflow is the real tracking server of the session.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from typer.testing import CliRunner

from policygate.cli import app
from policygate.decisions.log import DecisionLog
from policygate.demo.seed import ModelSpec, register
from tests.fixtures.azure.world import (
    AUTHORIZATION_FAILED,
    INTERNAL_ERROR,
    RG,
    SUB,
    SUB_SCOPE,
    SYSTEM_PRINCIPAL,
    WS,
    WS_ID,
    AzureWorld,
    EndpointSpec,
    approvals_tag,
    compliant_tags,
)
from tests.support.azure import decide

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

runner = CliRunner()
REF = "azureml:fraud-detector:3"


@pytest.fixture
def azure(azure_world: AzureWorld, monkeypatch: pytest.MonkeyPatch) -> AzureWorld:
    """Workspace settings from the environment, as in production; the replay transport reaches the CLI
    as a program running it in-process hands it: ``app(args, obj=client options)``."""
    monkeypatch.setenv("POLICYGATE_AZURE__SUBSCRIPTION_ID", SUB)
    monkeypatch.setenv("POLICYGATE_AZURE__RESOURCE_GROUP", RG)
    monkeypatch.setenv("POLICYGATE_AZURE__WORKSPACE", WS)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return azure_world


def ids(decision: dict[str, Any]) -> list[str]:
    return sorted({r["id"] for r in decision["reasons"]})


def test_compliant_azure_model_is_allowed(azure: AzureWorld, sqlite_url: str, no_network: list[str]) -> None:
    result = runner.invoke(
        app,
        ["check", REF, "--target", "production", "--requested-by", "ci@corp", "--db", sqlite_url],
        obj=azure.client_options(),
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ALLOW")
    log = DecisionLog(sqlite_url)
    record = log.query(outcome="allow")[0]
    log.close()
    subject = record["decision"]["subject"]
    assert (
        subject["ref"]
        == f"azureml://subscriptions/{SUB}/resourceGroups/{RG}/workspaces/{WS}/models/fraud-detector/versions/3"
    )
    assert no_network == []


def test_evidence_collect_prints_one_azure_document(azure: AzureWorld) -> None:
    result = runner.invoke(app, ["evidence", "collect", REF], obj=azure.client_options())
    assert result.exit_code == 0, result.output
    evidence = json.loads(result.stdout)
    assert evidence["collection"]["sources"] == [
        {
            "platform": "azureml",
            "endpoint": f"https://management.azure.com{WS_ID}",
            "ok": True,
            "required": True,
            "error": None,
            "read_at": None,
        }
    ]
    assert evidence["collection"]["gaps"] == [] and evidence["collection"]["conflicts"] == []
    assert evidence["deployment"]["endpoint"]["auth_mode"] == "aad_token"
    assert {ra["role"] for ra in evidence["deployment"]["identity"]["role_assignments"]} == {
        "AzureML Data Scientist",
        "Storage Blob Data Reader",
    }


@pytest.mark.parametrize(
    ("rule", "setup"),
    [
        (
            "ACC-001",
            lambda w: w.role_assignments.update(
                {SYSTEM_PRINCIPAL: [("Owner", f"/subscriptions/{SUB}/resourceGroups/{RG}")]}
            ),
        ),
        ("ACC-001", lambda w: w.role_assignments.update({SYSTEM_PRINCIPAL: [("Contributor", WS_ID)]})),
        (
            "ACC-002",
            lambda w: w.role_assignments.update({SYSTEM_PRINCIPAL: [("AzureML Data Scientist", SUB_SCOPE)]}),
        ),
        ("ACC-003", lambda w: setattr(w, "endpoints", [EndpointSpec(auth_mode="Key")])),
        ("ACC-003", lambda w: setattr(w, "endpoints", [EndpointSpec(auth_mode="AMLToken")])),
        (
            "ACC-004",
            lambda w: (
                setattr(w, "endpoints", [EndpointSpec(public_network_access="Enabled")]),
                w.tags.update(
                    risk_tier="high",
                    approvals=approvals_tag(("bob@corp", "production", 0), ("erin@corp", "production", 0)),
                ),
            ),
        ),
    ],
)
def test_access_rules_fire_on_azure_state(azure: AzureWorld, sqlite_url: str, rule: str, setup: Any) -> None:
    setup(azure)
    decision = decide(azure, sqlite_url)
    assert decision["outcome"] == "deny"
    assert ids(decision) == [rule], decision["reasons"]


def test_high_risk_model_on_private_endpoint_is_allowed(azure: AzureWorld, sqlite_url: str) -> None:
    azure.tags.update(
        risk_tier="high",
        approvals=approvals_tag(("bob@corp", "production", 0), ("erin@corp", "production", 0)),
    )
    assert decide(azure, sqlite_url)["outcome"] == "allow"


@pytest.mark.parametrize(
    ("pattern", "answer", "call", "text"),
    [
        ("/models/", AUTHORIZATION_FAILED, "get model fraud-detector:3", "AuthorizationFailed"),
        (
            "/models/",
            (404, {"error": {"code": "UserError", "message": "Model not found"}}),
            "get model fraud-detector:3",
            "not found",
        ),
        ("/models/", INTERNAL_ERROR, "get model fraud-detector:3", "500"),
        (
            "/roleAssignments$",
            AUTHORIZATION_FAILED,
            "list role assignments of principal",
            "AuthorizationFailed",
        ),
        ("/onlineEndpoints$", INTERNAL_ERROR, "list online endpoints", "500"),
    ],
)
def test_azure_failures_are_errors_naming_the_call(
    azure: AzureWorld, sqlite_url: str, pattern: str, answer: Any, call: str, text: str
) -> None:
    azure.failures[pattern] = answer
    decision = decide(azure, sqlite_url)
    assert decision["outcome"] == "error" and decision["allow"] is False
    [reason] = decision["reasons"]
    assert reason["id"] == "ERR-SOURCE"
    assert f"azureml: {call}" in reason["message"] and text in reason["message"], reason["message"]
    log = DecisionLog(sqlite_url)
    assert log.query(outcome="error")[0]["decision"]["subject"]["ref"] == REF  # the attempt is recorded
    log.close()


# -- one governed record for a model known to both platforms --


def linked_mlflow_version(mlflow_uri: str, owner: str = "alice@corp", link: str | None = REF) -> str:
    from mlflow.tracking import MlflowClient

    spec = ModelSpec(f"fraud-{uuid.uuid4().hex[:8]}", owner=owner)
    version = register(mlflow_uri, spec)
    if link:
        MlflowClient(mlflow_uri).set_model_version_tag(spec.name, version, "azureml.model", link)
    return f"mlflow:models:/{spec.name}/{version}"


def approved_now(world: AzureWorld, owner: str = "alice@corp") -> None:
    """Azure-side approval recorded now (after the MLflow version it is merged with was created)."""
    world.tags = {
        **compliant_tags(),
        "owner": owner,
        "approvals": approvals_tag(("bob@corp", "production", 0)),
    }


def test_model_on_both_platforms_is_one_document_with_the_owner_conflict(
    azure: AzureWorld, mlflow_server: str, sqlite_url: str
) -> None:
    ref = linked_mlflow_version(mlflow_server)
    approved_now(azure, owner="carol@corp")
    collected = runner.invoke(
        app, ["evidence", "collect", ref, "--mlflow-uri", mlflow_server], obj=azure.client_options()
    )
    assert collected.exit_code == 0, collected.output
    evidence = json.loads(collected.stdout)
    assert evidence["subject"]["ref"] == ref  # the platform the caller named is the subject
    assert [(s["platform"], s["ok"]) for s in evidence["collection"]["sources"]] == [
        ("mlflow", True),
        ("azureml", True),
    ]
    assert {
        "field": "ownership.owner",
        "values": {"mlflow": "alice@corp", "azureml": "carol@corp"},
    } in evidence["collection"]["conflicts"]
    assert evidence["lineage"]["run"]["platform"] == "mlflow"  # the primary's lineage
    assert evidence["deployment"]["endpoint"]["name"] == "fraud-scoring"  # Azure's deployment
    assert {a["source"] for a in evidence["approvals"]} == {
        "mlflow:model-version-tag",
        "azureml:model-version-tag",
    }

    decision = decide(azure, sqlite_url, ref, "--mlflow-uri", mlflow_server)
    assert decision["outcome"] == "deny" and ids(decision) == ["OWN-003"], decision["reasons"]
    assert "carol@corp" in decision["reasons"][0]["message"]


def test_same_owner_on_both_platforms_is_allowed(
    azure: AzureWorld, mlflow_server: str, sqlite_url: str
) -> None:
    ref = linked_mlflow_version(mlflow_server)
    approved_now(azure)
    decision = decide(azure, sqlite_url, ref, "--mlflow-uri", mlflow_server)
    assert decision["outcome"] == "allow", decision["reasons"]


def test_azure_primary_follows_its_mlflow_link(
    azure: AzureWorld, mlflow_server: str, sqlite_url: str
) -> None:
    mlflow_ref = linked_mlflow_version(mlflow_server, owner="dave@corp", link=None)
    azure.tags["mlflow.model"] = mlflow_ref
    decision = decide(azure, sqlite_url, REF, "--mlflow-uri", mlflow_server)
    assert ids(decision) == ["OWN-003"]
    log = DecisionLog(sqlite_url)
    evidence = log.query(outcome="deny")[0]["evidence"]
    log.close()
    assert [s["platform"] for s in evidence["collection"]["sources"]] == ["azureml", "mlflow"]
    assert evidence["subject"]["platform"] == "azureml"


@pytest.mark.parametrize(
    ("link", "failure", "text"),
    [
        (REF, ("/models/", AUTHORIZATION_FAILED), "AuthorizationFailed"),
        ("azureml:fraud-detector:99", None, "not found"),
        ("azureml:fraud-detector:latest", None, "is not a valid azureml model reference"),
    ],
)
def test_unreadable_counterpart_is_listed_and_denies(
    azure: AzureWorld,
    mlflow_server: str,
    sqlite_url: str,
    link: str,
    failure: tuple[str, Any] | None,
    text: str,
) -> None:
    if failure:
        azure.failures[failure[0]] = failure[1]
    ref = linked_mlflow_version(mlflow_server, link=link)
    collected = runner.invoke(
        app, ["evidence", "collect", ref, "--mlflow-uri", mlflow_server], obj=azure.client_options()
    )
    evidence = json.loads(collected.stdout)
    [failed] = [s for s in evidence["collection"]["sources"] if not s["ok"]]
    assert failed["platform"] == "azureml" and text in failed["error"], failed
    decision = decide(azure, sqlite_url, ref, "--mlflow-uri", mlflow_server)
    assert decision["outcome"] == "deny" and "EVD-001" in ids(decision)
