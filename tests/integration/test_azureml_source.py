"""AzureMLSource on the real azure-ai-ml and azure-mgmt-authorization clients, HTTP replayed."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from policygate.config.azure import AzureSettings
from policygate.refs import parse
from policygate.sources.azureml import AzureMLSource
from policygate.sources.base import SourceError
from tests.fixtures.azure.world import (
    AUTHORIZATION_FAILED,
    EXAMPLES,
    INTERNAL_ERROR,
    PREVIEW_FIELDS,
    REGISTRY,
    REGISTRY_HOST,
    RG,
    RG_SCOPE,
    SUB,
    SUB_SCOPE,
    SYSTEM_PRINCIPAL,
    UAI_ID,
    UAI_PRINCIPAL,
    WS,
    WS_ID,
    AzureWorld,
    DeploymentSpec,
    EndpointSpec,
    approvals_tag,
)

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

REF = "azureml:fraud-detector:3"
WORKSPACE = AzureSettings(subscription_id=SUB, resource_group=RG, workspace=WS)


def source(world: AzureWorld, settings: AzureSettings = WORKSPACE, **options: Any) -> AzureMLSource:
    return AzureMLSource(
        settings, timeout_s=options.pop("timeout_s", 10.0), **{**world.client_options(), **options}
    )


def collect(world: AzureWorld, ref: str = REF, settings: AzureSettings = WORKSPACE, **options: Any) -> Any:
    src = source(world, settings, **options)
    try:
        return src.collect(parse(ref))
    finally:
        src.close()


def test_compliant_model_version_is_read_in_full(azure_world: AzureWorld, no_network: list[str]) -> None:
    parts = collect(azure_world)
    subject = parts.subject
    assert (
        subject.ref
        == f"azureml://subscriptions/{SUB}/resourceGroups/{RG}/workspaces/{WS}/models/fraud-detector/versions/3"
    )
    assert (subject.platform, subject.name, subject.version, subject.stage) == (
        "azureml",
        "fraud-detector",
        "3",
        "Production",
    )
    assert subject.created_by == "dana@corp" and subject.created_at and subject.created_at.endswith("Z")
    assert subject.tags["owner"] == "alice@corp" and subject.properties == {"azureml.modelFormat": "mlflow"}
    assert parts.ownership.model_dump() == {
        "owner": "alice@corp",
        "team": "risk-ml",
        "use_case": "card fraud scoring",
        "risk_tier": "medium",
    }
    assert [(a.by, a.stage, a.source) for a in parts.approvals] == [
        ("bob@corp", "production", "azureml:model-version-tag")
    ]
    run = parts.lineage.run
    assert (run.platform, run.id, run.status) == ("azureml", "quirky_lime_9m4t2k8x7p", "Completed")
    assert run.experiment.name == "fraud-detector-training" and run.user == "dana@corp"
    assert (run.environment, run.compute) == ("sklearn-1.5:4", "cpu-cluster-d4")
    assert parts.lineage.code.commit == "9f2c1e7a4b6d8f0e1a3c5b7d9e2f4a6c8b0d1e3f"
    assert parts.lineage.code.repository == "https://github.com/example-corp/fraud-models"
    assert [d.model_dump() for d in parts.lineage.datasets] == [
        {
            "name": "transactions",
            "digest": None,
            "version": "12",
            "source": "azureml://datastores/workspaceblobstore/paths/transactions/2026-10/",
            "context": "training",
        }
    ]
    assert parts.deployment is not None
    assert parts.deployment.endpoint.model_dump() == {
        "name": "fraud-scoring",
        "auth_mode": "aad_token",
        "public_network_access": "disabled",
        "egress_public_network_access": "disabled",
    }
    identity = parts.deployment.identity
    assert identity.type == "system_assigned,user_assigned" and identity.principal_id == SYSTEM_PRINCIPAL
    assert sorted((r.role, r.scope, r.principal_id) for r in identity.role_assignments) == [
        ("AzureML Data Scientist", WS_ID, SYSTEM_PRINCIPAL),
        (
            "Storage Blob Data Reader",
            f"{RG_SCOPE}/providers/Microsoft.Storage/storageAccounts/stfraud",
            UAI_PRINCIPAL,
        ),
    ]
    assert parts.gaps == []
    assert parts.endpoint == f"https://management.azure.com{WS_ID}"
    assert parts.calls == 9
    assert no_network == []


def test_requests_and_api_versions_contract(azure_world: AzureWorld) -> None:
    """The calls the SDKs make, with their api-versions: an SDK upgrade that moves them shows up here."""
    collect(azure_world)
    ws = WS_ID
    auth = f"{SUB_SCOPE}/providers/Microsoft.Authorization"
    sent = sorted({(r.method, r.host, r.path, r.api_version) for r in azure_world.requests})
    assert sent == sorted(
        {
            ("GET", "management.azure.com", f"{ws}/models/fraud-detector/versions/3", "2023-08-01-preview"),
            ("GET", "management.azure.com", f"{ws}/jobs/quirky_lime_9m4t2k8x7p", "2024-01-01-preview"),
            ("GET", "management.azure.com", f"{ws}/data/transactions/versions/12", "2023-04-01-preview"),
            ("GET", "management.azure.com", f"{ws}/onlineEndpoints", "2022-02-01-preview"),
            (
                "GET",
                "management.azure.com",
                f"{ws}/onlineEndpoints/fraud-scoring/deployments",
                "2023-04-01-preview",
            ),
            ("GET", "management.azure.com", f"{auth}/roleAssignments", "2022-04-01"),
            (
                "GET",
                "management.azure.com",
                f"{auth}/roleDefinitions/f6c7c914-8db3-469d-8ca1-694a8f32e121",
                "2022-04-01",
            ),
            (
                "GET",
                "management.azure.com",
                f"{auth}/roleDefinitions/2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
                "2022-04-01",
            ),
        }
    )
    filters = sorted(
        r.query["$filter"][0] for r in azure_world.requests if r.path.endswith("/roleAssignments")
    )
    assert filters == [f"principalId eq '{SYSTEM_PRINCIPAL}'", f"principalId eq '{UAI_PRINCIPAL}'"]
    assert all(r.authorization for r in azure_world.requests)  # bearer token on every call
    assert set(azure_world.credential.scopes) == {"https://management.azure.com/.default"}


def test_registry_model_contract(azure_world: AzureWorld) -> None:
    ref = f"azureml://registries/{REGISTRY}/models/fraud-detector/versions/3"
    parts = collect(azure_world, ref)
    assert parts.subject.ref == ref and parts.endpoint == f"azureml://registries/{REGISTRY}"
    assert parts.ownership.owner == "alice@corp"
    # its training job, data and endpoints are read in the configured workspace; a deployment of
    # the workspace copy is not a deployment of the registry version
    assert parts.lineage.run is not None and parts.deployment is None
    registry = [(r.host, r.path, r.api_version) for r in azure_world.requests if "registr" in r.path]
    assert registry == [
        ("eastus.api.azureml.ms", f"/registrymanagement/v1.0/registries/{REGISTRY}/discovery", "v1.0"),
        (
            REGISTRY_HOST,
            f"/mferp/managementfrontend/subscriptions/{SUB}/resourceGroups/rg-ml-registries/providers/"
            f"Microsoft.MachineLearningServices/registries/{REGISTRY}/models/fraud-detector/versions/3",
            "2021-10-01-dataplanepreview",
        ),
    ]


def test_registry_version_served_by_a_workspace_endpoint(azure_world: AzureWorld) -> None:
    model = f"azureml://registries/{REGISTRY}/models/fraud-detector/versions/3"
    azure_world.endpoints = [EndpointSpec(deployments=[DeploymentSpec(model=model)])]
    parts = collect(azure_world, model)
    assert parts.deployment is not None and parts.deployment.endpoint.name == "fraud-scoring"


def test_full_workspace_ref_needs_no_configuration(azure_world: AzureWorld) -> None:
    ref = (
        f"azureml://subscriptions/{SUB}/resourceGroups/{RG}/workspaces/{WS}/models/fraud-detector/versions/3"
    )
    parts = collect(azure_world, ref, AzureSettings())
    assert parts.subject.ref == ref and parts.deployment is not None


def test_short_ref_without_workspace_is_a_configuration_error(azure_world: AzureWorld) -> None:
    with pytest.raises(SourceError) as err:
        collect(azure_world, REF, AzureSettings())
    assert err.value.call == "configure" and "POLICYGATE_AZURE__WORKSPACE" in err.value.message
    assert azure_world.requests == []


def test_every_data_input_form_of_a_job_is_recorded(azure_world: AzureWorld) -> None:
    azure_world.inputs = {
        "arm_id": {"jobInputType": "uri_folder", "uri": f"{WS_ID}/data/transactions/versions/12"},
        "short": {"jobInputType": "uri_file", "uri": "azureml:labels:4"},
        "long": {
            "jobInputType": "mltable",
            "uri": f"azureml://subscriptions/{SUB}/resourcegroups/{RG}/workspaces/{WS}/data/features/versions/7",
        },
        "arm_prefixed": {
            "jobInputType": "uri_folder",
            "uri": f"azureml:{WS_ID}/data/transactions/versions/12",
        },
        "registry": {
            "jobInputType": "uri_file",
            "uri": "azureml://registries/shared-data/data/ref-rates/versions/1",
        },
        "label": {"jobInputType": "uri_folder", "uri": "azureml:transactions@latest"},
        "datastore": {
            "jobInputType": "uri_folder",
            "uri": "azureml://datastores/workspaceblobstore/paths/raw/2026-10/",
        },
        "url": {"jobInputType": "uri_file", "uri": "https://stfraud.blob.core.windows.net/raw/holidays.csv"},
        "base_model": {"jobInputType": "mlflow_model", "uri": "azureml:fraud-detector:2"},
        "epochs": {"jobInputType": "literal", "value": "20"},
    }
    parts = collect(azure_world)
    got = sorted(((d.name, d.version, d.source) for d in parts.lineage.datasets), key=str)
    blob = "azureml://datastores/workspaceblobstore/paths"
    assert got == sorted(
        [
            (
                "transactions",
                "12",
                f"{blob}/transactions/2026-10/",
            ),  # ARM id -> "transactions:12" -> data.get
            ("labels", "4", f"{blob}/labels/v4/labels.csv"),
            ("features", "7", f"{blob}/features/v7/"),
            ("transactions", "12", f"{blob}/transactions/2026-10/"),
            ("ref-rates", "1", "azureml://registries/shared-data/data/ref-rates/versions/1"),  # not resolved
            ("transactions", None, "azureml:transactions@latest"),  # a label is not a pin
            ("datastore", None, f"{blob}/raw/2026-10/"),
            ("url", None, "https://stfraud.blob.core.windows.net/raw/holidays.csv"),
        ],
        key=str,
    )
    data_calls = sorted(r.path.rsplit("/data/", 1)[1] for r in azure_world.requests if "/data/" in r.path)
    assert data_calls == [
        "features/versions/7",
        "labels/versions/4",
        "transactions/versions/12",
        "transactions/versions/12",
    ]


def test_pipeline_job_lineage(azure_world: AzureWorld) -> None:
    azure_world.job_type = "Pipeline"
    parts = collect(azure_world)
    assert parts.lineage.run.status == "Completed" and parts.lineage.datasets[0].name == "transactions"


@pytest.mark.parametrize(
    ("change", "gaps"),
    [
        ({"tags": {}}, ["ownership.owner", "ownership.risk_tier", "ownership.use_case"]),
        (
            {"tags": {"approvals": "[{'by': 'bob'}"}},
            ["approvals", "ownership.owner", "ownership.risk_tier", "ownership.use_case"],
        ),
        ({"job_name": None}, ["lineage.run"]),
        ({"job_properties": {}}, ["lineage.code.commit"]),
        ({"inputs": {"lr": {"jobInputType": "literal", "value": "0.1"}}}, ["lineage.datasets"]),
    ],
)
def test_missing_fields_are_gaps(azure_world: AzureWorld, change: dict[str, Any], gaps: list[str]) -> None:
    for key, value in change.items():
        setattr(azure_world, key, value)
    assert sorted(collect(azure_world).gaps) == gaps


def test_ownership_and_approvals_from_properties_tags_win(azure_world: AzureWorld) -> None:
    azure_world.tags = {"owner": "alice@corp"}
    azure_world.properties = {
        "owner": "someone-else@corp",
        "risk_tier": "High",
        "use_case": "card fraud scoring",
        "approvals": approvals_tag(("bob@corp", "production", 1)),
    }
    parts = collect(azure_world)
    assert (parts.ownership.owner, parts.ownership.risk_tier) == ("alice@corp", "high")
    assert [a.source for a in parts.approvals] == ["azureml:model-version-property"]


def test_endpoint_normalisation_and_user_assigned_identity(azure_world: AzureWorld) -> None:
    azure_world.endpoints = [
        EndpointSpec(
            auth_mode="Key",
            public_network_access="Enabled",
            identity_type="UserAssigned",
            system_principal=None,
            deployments=[DeploymentSpec(egress="Enabled")],
        )
    ]
    deployment = collect(azure_world).deployment
    assert deployment.endpoint.model_dump() == {
        "name": "fraud-scoring",
        "auth_mode": "key",
        "public_network_access": "enabled",
        "egress_public_network_access": "enabled",
    }
    # azure-ai-ml 1.35 leaves ManagedIdentityConfiguration.principal_id empty for endpoints; it is still read
    assert deployment.identity.type == "user_assigned" and deployment.identity.principal_id == UAI_PRINCIPAL
    assert [r.principal_id for r in deployment.identity.role_assignments] == [UAI_PRINCIPAL]


def test_aml_token_and_unknown_network_access(azure_world: AzureWorld) -> None:
    azure_world.endpoints = [EndpointSpec(auth_mode="AMLToken", public_network_access=None)]
    parts = collect(azure_world)
    assert parts.deployment.endpoint.auth_mode == "aml_token"
    assert parts.deployment.endpoint.public_network_access is None
    assert parts.gaps == ["deployment.endpoint.public_network_access"]


def test_only_endpoints_serving_this_version_count(azure_world: AzureWorld) -> None:
    azure_world.endpoints = [
        EndpointSpec(
            name="fraud-canary",
            auth_mode="Key",
            deployments=[DeploymentSpec(model=f"{WS_ID}/models/fraud-detector/versions/2")],
        ),
        EndpointSpec(name="churn", deployments=[DeploymentSpec(model=f"{WS_ID}/models/churn/versions/3")]),
    ]
    parts = collect(azure_world)
    assert parts.deployment is None and parts.gaps == []
    assert not [r for r in azure_world.requests if "Authorization" in r.path]


def test_most_exposed_serving_endpoint_and_every_identity(azure_world: AzureWorld) -> None:
    other = "c0ffee00-1111-4222-8333-444455556666"
    azure_world.endpoints = [
        EndpointSpec(name="fraud-private"),
        EndpointSpec(
            name="fraud-partner",
            auth_mode="Key",
            public_network_access="Enabled",
            identity_type="SystemAssigned",
            system_principal=other,
            user_assigned={},
        ),
    ]
    azure_world.role_assignments[other] = [("Contributor", SUB_SCOPE)]
    deployment = collect(azure_world).deployment
    assert deployment.endpoint.name == "fraud-partner" and deployment.endpoint.auth_mode == "key"
    principals = {r.principal_id for r in deployment.identity.role_assignments}
    assert principals == {SYSTEM_PRINCIPAL, UAI_PRINCIPAL, other}


def test_configured_endpoints_are_read_by_name(azure_world: AzureWorld) -> None:
    azure_world.endpoints.append(EndpointSpec(name="unrelated", auth_mode="Key"))
    settings = WORKSPACE.model_copy(update={"endpoints": ["fraud-scoring"]})
    parts = collect(azure_world, settings=settings)
    assert parts.deployment.endpoint.name == "fraud-scoring"
    paths = [r.path for r in azure_world.requests]
    assert f"{WS_ID}/onlineEndpoints/fraud-scoring" in paths and f"{WS_ID}/onlineEndpoints" not in paths
    assert not any("unrelated" in p for p in paths)


@pytest.mark.parametrize(
    ("pattern", "answer", "call", "text"),
    [
        (
            "/models/",
            AUTHORIZATION_FAILED,
            "get model fraud-detector:3 in workspace mlw-fraud-prod",
            "403 AuthorizationFailed",
        ),
        (
            "/models/",
            (404, {"error": {"code": "UserError", "message": "Not found"}}),
            "get model fraud-detector:3",
            "not found",
        ),
        (
            "/models/",
            (401, {"error": {"code": "InvalidAuthenticationToken", "message": "expired"}}),
            "get model",
            "not authenticated",
        ),
        ("/models/", INTERNAL_ERROR, "get model fraud-detector:3", "500 InternalServerError"),
        (
            "/models/",
            (429, {"error": {"code": "TooManyRequests", "message": "slow down"}}),
            "get model",
            "429",
        ),
        ("/jobs/", INTERNAL_ERROR, "get job quirky_lime_9m4t2k8x7p", "500"),
        ("/data/", AUTHORIZATION_FAILED, "get data transactions:12", "AuthorizationFailed"),
        ("/onlineEndpoints$", AUTHORIZATION_FAILED, "list online endpoints", "AuthorizationFailed"),
        ("/deployments$", INTERNAL_ERROR, "list deployments of endpoint fraud-scoring", "500"),
        (
            "/roleAssignments$",
            AUTHORIZATION_FAILED,
            "list role assignments of principal",
            "not authorised (403 AuthorizationFailed",
        ),
        (
            "/roleDefinitions/",
            (404, {"error": {"code": "RoleDefinitionDoesNotExist", "message": "gone"}}),
            "get role definition",
            "not found",
        ),
        (
            "/models/",
            (200, {"id": "not an ARM id", "properties": None}),
            "get model fraud-detector:3",
            "unexpected answer",
        ),
    ],
)
def test_failures_name_the_call(
    azure_world: AzureWorld, pattern: str, answer: Any, call: str, text: str
) -> None:
    azure_world.failures[pattern] = answer
    with pytest.raises(SourceError) as err:
        collect(azure_world)
    assert err.value.platform == "azureml"
    assert err.value.call.startswith(call), err.value
    assert text in err.value.message, err.value.message
    assert "replayed-test-token" not in str(err.value)


def test_retries_are_bounded(azure_world: AzureWorld) -> None:
    azure_world.failures["/models/"] = INTERNAL_ERROR
    started = time.monotonic()
    with pytest.raises(SourceError):
        collect(azure_world, retry_total=2, retry_backoff_factor=0.01)
    assert len(azure_world.requests) == 3  # the first try and two retries, then it stops
    assert time.monotonic() - started < 3


def test_a_hanging_service_is_cut_off_by_the_total_timeout(azure_world: AzureWorld) -> None:
    azure_world.hang(lambda host, path: "/jobs/" in path, 2.5)
    started = time.monotonic()
    with pytest.raises(SourceError) as err:
        collect(azure_world, timeout_s=1.0)
    assert time.monotonic() - started < 2.0
    assert err.value.call == "get job quirky_lime_9m4t2k8x7p" and "timeout" in err.value.message


def test_a_caller_built_transport_is_bounded_and_the_first_decision_after_an_outage_succeeds(
    azure_world: AzureWorld,
) -> None:
    """The caller's own RequestsTransport (300 s reads by default) hangs on a dead Azure: every request
    still ends by the collection's deadline, so when Azure answers again no worker is still held and
    the next collection succeeds."""
    source = AzureMLSource(WORKSPACE, timeout_s=1.0, **azure_world.client_options())
    try:
        azure_world.adapter.down = True
        started = time.monotonic()
        with ThreadPoolExecutor(6) as pool:  # more hung calls than the source has workers
            failed = [pool.submit(source.collect, parse(REF)) for _ in range(12)]
            errors = [f.exception() for f in failed]
        assert all(isinstance(e, SourceError) and "time" in str(e) for e in errors), errors
        azure_world.adapter.down = False  # Azure answers again
        parts = source.collect(parse(REF))
        assert parts.subject.name == azure_world.name and time.monotonic() - started < 20
        hung = [t for t in azure_world.adapter.timeouts if t is not None]
        assert hung and max(t[1] for t in hung) <= 1.0  # never azure-core's 300 s
    finally:
        source.close()


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.ConnectionError("connection refused"),
        requests.exceptions.ReadTimeout("read timed out"),
    ],
)
def test_transport_errors_are_source_errors(azure_world: AzureWorld, error: Exception) -> None:
    def refuse(method: str, host: str, path: str, query: dict[str, list[str]]) -> Any:
        raise error

    azure_world.adapter.handler = refuse
    with pytest.raises(SourceError) as err:
        collect(azure_world)
    assert err.value.call.startswith("get model") and "unreachable" in err.value.message


def test_socket_guard_blocks_real_network(no_network: list[str]) -> None:
    with pytest.raises(OSError, match="socket guard"):
        socket.create_connection(("management.azure.com", 443), timeout=1)
    assert no_network == ["'management.azure.com'"]


def test_fixture_bodies_only_use_fields_of_the_microsoft_examples(azure_world: AzureWorld) -> None:
    """The replayed bodies are the examples with values filled in: no invented field names."""

    def keys(obj: Any, prefix: str = "") -> set[str]:
        out: set[str] = set()
        if isinstance(obj, dict):
            for k, v in obj.items():
                path = f"{prefix}.{k}" if prefix else k
                out.add(path)
                # free-form maps (tags, properties, inputs...) are keyed by user names
                if (
                    k
                    not in {
                        "tags",
                        "properties",
                        "inputs",
                        "outputs",
                        "traffic",
                        "userAssignedIdentities",
                        "flavors",
                        "environmentVariables",
                        "services",
                        "parameters",
                        "registryFqdns",
                        "data",
                    }
                    or prefix.count(".") > 1
                ):
                    out |= keys(v, path)
        elif isinstance(obj, list) and obj:
            out |= keys(obj[0], prefix + "[]")
        return out

    def example_keys(relative: str) -> set[str]:
        return keys(json.loads((EXAMPLES / relative).read_text())["responses"]["200"]["body"])

    endpoint = azure_world.endpoints[0]
    cases = [
        ("model_version", azure_world.model_version_body(), "2025-12-01/Workspace/ModelVersion/get.json"),
        (
            "registry_model",
            azure_world.model_version_body(registry=True),
            "2025-12-01/Registry/ModelVersion/get.json",
        ),
        ("job", azure_world.job_body(), "2025-12-01/Job/CommandJob/get.json"),
        (
            "data",
            azure_world.data_body("transactions", "12"),
            "2025-12-01/Workspace/DataVersionBase/get.json",
        ),
        (
            "online_endpoint",
            azure_world.endpoint_body(endpoint),
            "2025-12-01/Workspace/OnlineEndpoint/get.json",
        ),
        (
            "online_deployment",
            azure_world.deployment_body(endpoint, endpoint.deployments[0]),
            "2025-12-01/OnlineDeployment/ManagedOnlineDeployment/get.json",
        ),
        (
            "role_assignments",
            azure_world.role_assignments_body(SYSTEM_PRINCIPAL),
            "2022-04-01/RoleAssignments_ListForScope.json",
        ),
        (
            "role_definition",
            azure_world.role_definition_body("b24988ac-6180-42a0-ab88-20f7382dd24c"),
            "2022-04-01/GetRoleDefinitionById.json",
        ),
    ]
    for kind, body, relative in cases:
        extra = (
            keys(body)
            - example_keys(relative)
            - PREVIEW_FIELDS.get(kind.replace("registry_model", "model_version"), set())
        )
        assert not extra, f"{kind}: fields not in {relative}: {sorted(extra)}"
    assert UAI_ID in azure_world.endpoint_body(endpoint)["identity"]["userAssignedIdentities"]


def test_retire_archives_and_unretire_restores_the_version(azure_world: AzureWorld) -> None:
    """The lifecycle write-back (issue 29): azure-ai-ml's archive/restore, a GET then a PUT of the
    version with isArchived, which the next read shows; Azure refusing is a SourceError naming it."""
    src = source(azure_world)
    ref = parse("azureml:fraud-detector:3")
    src.set_archived(ref, True)
    puts = [r for r in azure_world.requests if r.method == "PUT"]
    assert [r.path for r in puts] == [f"{WS_ID}/models/fraud-detector/versions/3"]
    assert json.loads(puts[0].body or b"{}")["properties"]["isArchived"] is True
    assert azure_world.archived is True
    src.set_archived(ref, False)
    assert azure_world.archived is False
    azure_world.failures[r"/models/fraud-detector/versions/3$"] = (
        403,
        {"error": {"code": "AuthorizationFailed"}},
    )
    with pytest.raises(SourceError, match="archive model fraud-detector:3"):
        src.set_archived(ref, True)
    assert azure_world.archived is False
