"""Foundry-resource project deployments (azure-ai-projects ``deployments.list``), HTTP replayed.

The real ``AIProjectClient`` runs on the same credential/transport seam as MLClient; the replayed
bodies are built from the SDK's own ``ModelDeployment`` model (tests/fixtures/azure/world.py).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests
from typer.testing import CliRunner

from policygate.cli import app
from policygate.config import Settings
from policygate.config.azure import AzureSettings
from policygate.decisions.log import DecisionLog
from policygate.evidence import ModelDeployment
from policygate.refs import parse
from policygate.sources.azureml import AzureMLSource
from policygate.sources.base import SourceError
from tests.fixtures.azure.world import (
    FOUNDRY_ENDPOINT,
    FOUNDRY_HOST,
    FOUNDRY_PROJECT,
    INTERNAL_ERROR,
    REGISTRY,
    RG,
    SUB,
    WS,
    WS_ID,
    AzureWorld,
    DeploymentSpec,
    EndpointSpec,
    FoundryDeploymentSpec,
    error,
)

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

REF = "azureml:fraud-detector:3"
FOUNDRY = AzureSettings(
    subscription_id=SUB, resource_group=RG, workspace=WS, foundry_project_endpoint=FOUNDRY_ENDPOINT
)
DEPLOYMENTS_PATH = f"/api/projects/{FOUNDRY_PROJECT}/deployments"
CALL = f"list model deployments of Foundry project {FOUNDRY_PROJECT}"
V3 = ModelDeployment(
    name="fraud-detector-v3",
    publisher="Contoso",
    model="fraud-detector",
    version="3",
    sku="ProvisionedManaged",
    capacity=100,
    source=FOUNDRY_ENDPOINT,
)
# What Foundry answers when the caller lacks the data action (observed as 401 and as 403).
PERMISSION_DENIED = error(
    "PermissionDenied",
    "The principal `a1b2c3d4-0000-4000-8000-000000000001` lacks the required data action "
    "`Microsoft.CognitiveServices/accounts/AIServices/deployments/read` to perform "
    "`GET /api/projects/{projectName}/deployments` operation.",
)


def collect(world: AzureWorld, ref: str = REF, settings: AzureSettings = FOUNDRY, **options: Any) -> Any:
    src = AzureMLSource(
        settings, timeout_s=options.pop("timeout_s", 10.0), **{**world.client_options(), **options}
    )
    try:
        return src.collect(parse(ref))
    finally:
        src.close()


def test_foundry_deployments_of_this_version_are_recorded(
    azure_world: AzureWorld, no_network: list[str]
) -> None:
    parts = collect(azure_world)
    deployment = parts.deployment
    assert deployment is not None and deployment.endpoint.name == "fraud-scoring"  # Azure ML still read
    # of gpt-4o-mini, text-embedding-3-large, fraud-detector 2 and 3: only version 3 is this model version
    assert deployment.model_deployments == [V3]
    assert parts.gaps == [] and parts.calls == 10
    assert no_network == []


def test_foundry_request_and_api_version_contract(azure_world: AzureWorld) -> None:
    """The call azure-ai-projects makes, with its api-version and token scope: an SDK upgrade shows up."""
    collect(azure_world)
    foundry = [r for r in azure_world.requests if r.host == FOUNDRY_HOST]
    assert [(r.method, r.path, r.query) for r in foundry] == [
        ("GET", DEPLOYMENTS_PATH, {"api-version": ["v1"]})  # no server-side filter: matched here
    ]
    assert all(r.authorization for r in foundry)
    assert set(azure_world.credential.scopes) == {
        "https://management.azure.com/.default",
        "https://ai.azure.com/.default",
    }
    others = {r.host for r in azure_world.requests} - {FOUNDRY_HOST}
    assert others == {"management.azure.com"}


def test_without_foundry_configuration_nothing_is_asked(azure_world: AzureWorld) -> None:
    parts = collect(azure_world, settings=FOUNDRY.model_copy(update={"foundry_project_endpoint": None}))
    assert parts.deployment.model_deployments == [] and parts.calls == 9
    assert not [r for r in azure_world.requests if r.host == FOUNDRY_HOST]


def test_version_deployed_only_on_foundry(azure_world: AzureWorld) -> None:
    azure_world.endpoints = [
        EndpointSpec(deployments=[DeploymentSpec(model=f"{WS_ID}/models/fraud-detector/versions/2")])
    ]
    parts = collect(azure_world)
    deployment = parts.deployment
    assert deployment is not None
    assert (deployment.endpoint, deployment.identity) == (None, None)
    assert deployment.model_deployments == [V3]
    assert parts.gaps == []  # no Azure ML endpoint serves it: no endpoint or identity gaps
    assert not [r for r in azure_world.requests if "Authorization" in r.path]


def test_no_deployment_anywhere_is_null(azure_world: AzureWorld) -> None:
    azure_world.endpoints = []
    azure_world.foundry_deployments = [d for d in azure_world.foundry_deployments if d.version != "3"]
    parts = collect(azure_world)
    assert parts.deployment is None and parts.gaps == []


def test_matching_is_on_model_name_any_case_and_exact_version(azure_world: AzureWorld) -> None:
    azure_world.foundry_deployments += [
        FoundryDeploymentSpec("fraud-eu", "Fraud-Detector", "3", "Contoso", sku="DataZoneStandard"),
        FoundryDeploymentSpec("fraud-old", "fraud-detector", "3.1", "Contoso"),
        FoundryDeploymentSpec("fraud-other", "fraud-detector-lite", "3", "Contoso"),
    ]
    names = [(m.name, m.model, m.sku) for m in collect(azure_world).deployment.model_deployments]
    assert names == [
        ("fraud-detector-v3", "fraud-detector", "ProvisionedManaged"),
        ("fraud-eu", "Fraud-Detector", "DataZoneStandard"),
    ]


def test_every_page_is_read(azure_world: AzureWorld) -> None:
    azure_world.foundry_page_size = 1
    assert collect(azure_world).deployment.model_deployments == [V3]  # the last of four pages
    pages = [r for r in azure_world.requests if r.host == FOUNDRY_HOST]
    assert len(pages) == 4 and {r.api_version for r in pages} == {"v1"}


def test_registry_model_deployed_on_foundry(azure_world: AzureWorld) -> None:
    ref = f"azureml://registries/{REGISTRY}/models/fraud-detector/versions/3"
    settings = AzureSettings(foundry_project_endpoint=FOUNDRY_ENDPOINT)  # no workspace: registry + Foundry
    parts = collect(azure_world, ref, settings)
    assert parts.subject.ref == ref and parts.deployment.model_deployments == [V3]


@pytest.mark.parametrize(
    ("answer", "text"),
    [
        ((403, PERMISSION_DENIED), "not authorised (403 PermissionDenied"),
        ((401, PERMISSION_DENIED), "not authorised (401 PermissionDenied"),
        (
            (401, error("InvalidAuthenticationToken", "The access token is invalid.")),
            "not authenticated (401",
        ),
        ((404, error("NotFound", "Project fraud-scoring not found.")), "not found (404"),
        (INTERNAL_ERROR, "Azure answered an error (500 InternalServerError"),
        ((503, error("ServiceUnavailable", "try later")), "Azure answered an error (503"),
        ((200, {"value": "not a list"}), "unexpected answer"),
        ((200, {"value": [{"type": "ModelDeployment", "modelName": "fraud-detector"}]}), "unexpected answer"),
    ],
)
def test_foundry_failures_fail_closed_naming_the_call(
    azure_world: AzureWorld, answer: Any, text: str
) -> None:
    azure_world.failures["^/api/projects/"] = answer
    with pytest.raises(SourceError) as err:
        collect(azure_world)
    assert err.value.platform == "azureml" and err.value.call == CALL
    assert text in err.value.message, err.value.message
    assert "replayed-test-token" not in str(err.value)


def test_foundry_connection_failure_is_a_source_error(azure_world: AzureWorld) -> None:
    answer = azure_world.answer

    def refuse(method: str, host: str, path: str, query: dict[str, list[str]]) -> Any:
        if host == FOUNDRY_HOST:
            raise requests.exceptions.ConnectionError("connection refused")
        return answer(method, host, path, query)

    azure_world.adapter.handler = refuse
    with pytest.raises(SourceError) as err:
        collect(azure_world)
    assert err.value.call == CALL and "unreachable" in err.value.message


def test_foundry_retries_are_bounded(azure_world: AzureWorld) -> None:
    azure_world.failures["^/api/projects/"] = INTERNAL_ERROR
    with pytest.raises(SourceError):
        collect(azure_world, retry_total=2, retry_backoff_factor=0.01)
    assert len([r for r in azure_world.requests if r.host == FOUNDRY_HOST]) == 3


def test_a_hanging_foundry_project_is_cut_off_by_the_total_timeout(azure_world: AzureWorld) -> None:
    import azure.ai.ml  # noqa: F401  # warm imports, so only the hanging call uses the budget
    import azure.ai.projects  # noqa: F401

    azure_world.hang(lambda host, path: host == FOUNDRY_HOST, 2.5)
    started = time.monotonic()
    with pytest.raises(SourceError) as err:
        collect(azure_world, timeout_s=1.0)
    assert time.monotonic() - started < 2.0
    assert err.value.call == CALL and "timeout" in err.value.message


def test_sdk_reads_every_field_of_the_replayed_body(azure_world: AzureWorld) -> None:
    """The replayed items use only the wire names of the SDK's ModelDeployment / ModelDeploymentSku."""
    from azure.ai.projects.models import ModelDeployment as SdkModelDeployment

    azure_world.foundry_deployments[0].connection = "aoai-westeurope"
    body = azure_world.foundry_deployment_body(azure_world.foundry_deployments[0])
    sdk = SdkModelDeployment(body)
    assert {f._rest_name for f in sdk._attr_to_rest_field.values()} >= set(body)
    assert {f._rest_name for f in sdk.sku._attr_to_rest_field.values()} >= set(body["sku"])
    assert (sdk.model_publisher, sdk.model_name, sdk.model_version) == ("OpenAI", "gpt-4o-mini", "2024-07-18")
    assert (sdk.sku.name, sdk.sku.capacity, sdk.connection_name) == ("GlobalStandard", 250, "aoai-westeurope")


@pytest.mark.parametrize(
    "value",
    [
        "http://aif.services.ai.azure.com/api/projects/p",  # a bearer token over plain http
        "https://aif.services.ai.azure.com",
        "https://aif.services.ai.azure.com/api/projects",
        "https://aif.services.ai.azure.com/api/projects/p/deployments",
        "aif.services.ai.azure.com/api/projects/p",
    ],
)
def test_malformed_project_endpoint_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="Foundry project endpoint"):
        AzureSettings(foundry_project_endpoint=value)


def test_project_endpoint_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICYGATE_AZURE__FOUNDRY_PROJECT_ENDPOINT", FOUNDRY_ENDPOINT + "/")
    assert Settings().azure.foundry_project_endpoint == FOUNDRY_ENDPOINT
    monkeypatch.setenv("POLICYGATE_AZURE__FOUNDRY_PROJECT_ENDPOINT", "")
    assert Settings().azure.foundry_project_endpoint is None


# -- end to end: policygate check / evidence collect --

runner = CliRunner()


@pytest.fixture
def azure(azure_with_foundry: AzureWorld) -> AzureWorld:
    return azure_with_foundry


def test_evidence_carries_the_foundry_deployments(azure: AzureWorld) -> None:
    result = runner.invoke(app, ["evidence", "collect", REF], obj=azure.client_options())
    assert result.exit_code == 0, result.output
    evidence = json.loads(result.stdout)
    assert evidence["deployment"]["model_deployments"] == [V3.model_dump()]
    assert evidence["collection"]["gaps"] == []


def test_compliant_model_with_foundry_deployments_is_allowed(azure: AzureWorld, sqlite_url: str) -> None:
    args = ["check", REF, "--target", "production", "--requested-by", "ci@corp", "--db", sqlite_url]
    result = runner.invoke(app, args, obj=azure.client_options())
    assert result.exit_code == 0, result.output


def test_forbidden_foundry_project_is_an_error_exit_2(
    azure: AzureWorld, sqlite_url: str, no_network: list[str]
) -> None:
    azure.failures["^/api/projects/"] = (403, PERMISSION_DENIED)
    args = ["check", REF, "--target", "production", "--requested-by", "ci@corp", "--db", sqlite_url]
    result = runner.invoke(app, [*args, "--format", "json"], obj=azure.client_options())
    assert result.exit_code == 2, result.output
    decision = json.loads(result.stdout)
    assert decision["outcome"] == "error" and decision["allow"] is False
    [reason] = decision["reasons"]
    assert reason["id"] == "ERR-SOURCE"
    assert f"azureml: {CALL}: not authorised (403 PermissionDenied" in reason["message"], reason["message"]
    log = DecisionLog(sqlite_url)
    assert log.query(outcome="error")[0]["decision"]["subject"]["ref"] == REF  # the attempt is recorded
    log.close()
    assert no_network == []
