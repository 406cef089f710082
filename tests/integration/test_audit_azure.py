"""The audit of what Azure ML online deployments and a Foundry project serve, through the Azure SDKs on
the replayed wire shapes of tests/fixtures/azure (no live tenant), the real OPA and a SQLite log."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from policygate.cli import app
from tests.fixtures.azure.world import (
    INTERNAL_ERROR,
    RG,
    SUB,
    WS,
    WS_ID,
    AzureWorld,
    DeploymentSpec,
    EndpointSpec,
)

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")
runner = CliRunner()
FULL_REF = (
    f"azureml://subscriptions/{SUB}/resourceGroups/{RG}/workspaces/{WS}/models/fraud-detector/versions/3"
)


@pytest.fixture
def azure(azure_with_foundry: AzureWorld) -> AzureWorld:
    return azure_with_foundry


def audit(world: AzureWorld, db: str, *args: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(
        app,
        ["audit", "run", "--platform", "azureml", "--db", db, "-f", "json", *args],
        obj=world.client_options(),
    )
    assert result.exit_code in (0, 1, 2), result.output
    return result.exit_code, json.loads(result.stdout)


def by_via(run: dict[str, Any]) -> dict[str, list[tuple[str, list[str]]]]:
    found: dict[str, list[tuple[str, list[str]]]] = {m["via"]: [] for m in run["models"]}
    for f in run["findings"]:
        found[f["via"]].append((f["kind"], f["reasons"]))
    return found


def test_deployed_models_are_audited_and_a_gated_one_is_clean(azure: AzureWorld, sqlite_url: str) -> None:
    code, before = audit(azure, sqlite_url, "--target", "production")
    assert code == 1
    assert by_via(before) == {
        "online deployment fraud-scoring/blue": [("bypass", ["AUD-001"])],  # served, never decided
        "foundry deployment gpt-4o-mini (OpenAI)": [("bypass", ["AUD-004"])],  # not a registered version
        "foundry deployment text-embedding-3-large (OpenAI)": [("bypass", ["AUD-004"])],
        "foundry deployment fraud-detector-v2 (Contoso)": [("bypass", ["AUD-004"])],
        "foundry deployment fraud-detector-v3 (Contoso)": [("bypass", ["AUD-001"])],
    }
    served = next(m for m in before["models"] if m["via"].startswith("online"))
    assert served["model"] == FULL_REF and served["outcome"] == "allow"

    gated = runner.invoke(
        app, ["check", "azureml:fraud-detector:3", "-t", "production", "--db", sqlite_url, "-f", "json"],
        obj=azure.client_options(),
    )  # fmt: skip
    assert gated.exit_code == 0, gated.output

    code, after = audit(azure, sqlite_url)
    findings = by_via(after)
    # the decision recorded under the short reference counts for the deployment's full one
    assert findings["online deployment fraud-scoring/blue"] == []
    assert findings["foundry deployment fraud-detector-v3 (Contoso)"] == []
    assert code == 1 and after["complete"] is True


def test_publishers_filter_the_foundry_deployments(
    azure: AzureWorld, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLICYGATE_AUDIT_FOUNDRY_PUBLISHERS", '["Contoso"]')
    _, run = audit(azure, sqlite_url)
    assert sorted(m["via"] for m in run["models"]) == [
        "foundry deployment fraud-detector-v2 (Contoso)",
        "foundry deployment fraud-detector-v3 (Contoso)",
        "online deployment fraud-scoring/blue",
    ]


def test_a_role_broadened_after_the_decision_is_drift(azure: AzureWorld, sqlite_url: str) -> None:
    assert runner.invoke(
        app, ["check", "azureml:fraud-detector:3", "-t", "production", "--db", sqlite_url],
        obj=azure.client_options(),
    ).exit_code == 0  # fmt: skip
    principal = next(iter(azure.role_assignments))
    azure.role_assignments[principal].append(("Contributor", WS_ID))
    _, run = audit(azure, sqlite_url)
    online = by_via(run)["online deployment fraud-scoring/blue"]
    assert [kind for kind, _ in online] == ["drift"]
    assert "ACC-001" in online[0][1]


def test_an_endpoint_listing_that_fails_is_an_incomplete_run(azure: AzureWorld, sqlite_url: str) -> None:
    azure.failures[r"/onlineEndpoints$"] = INTERNAL_ERROR
    azure.endpoints = [EndpointSpec(deployments=[DeploymentSpec()])]
    code, run = audit(azure, sqlite_url)
    assert code == 2 and run["status"] == "incomplete"
    assert run["errors"] and run["errors"][0].startswith("azureml: azureml: list online endpoints")
