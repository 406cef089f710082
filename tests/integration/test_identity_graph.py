"""POLICYGATE_DIRECTORY=graph (issue 29): Microsoft Entra ID through Microsoft Graph, replayed in
Graph's wire shapes at the azure-core transport (tests/fixtures/graph) on the same transport and
credential as the replayed Azure ML workspace (tests/fixtures/azure); the real OPA decides."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from policygate.cli import app
from policygate.sources.directory import DirectoryError
from policygate.sources.directory_graph import GraphDirectory
from tests.fixtures.azure.world import RG, SUB, SYSTEM_PRINCIPAL, WS, AzureWorld
from tests.fixtures.graph.world import GraphAdapter, GraphTenant, ServicePrincipal, User, mount
from tests.support.azure import decide

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

runner = CliRunner()
REF = "azureml:fraud-detector:3"
SOON = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")


def people() -> list[User]:
    return [
        User("alice@corp", "11111111-0000-4000-8000-00000000000a", groups=["risk-ml"], manager="carol@corp"),
        User("bob@corp", "11111111-0000-4000-8000-00000000000b", groups=["model-risk"]),
        User("carol@corp", "11111111-0000-4000-8000-00000000000c", groups=["risk-ml-leads"]),
        User("dana@corp", "11111111-0000-4000-8000-00000000000d", leave="2026-01-31T00:00:00Z"),
        User("erin@corp", "11111111-0000-4000-8000-00000000000e", enabled=False),
    ]


def deployment_identity(**changes: Any) -> ServicePrincipal:
    base: dict[str, Any] = {
        "object_id": SYSTEM_PRINCIPAL,
        "app_id": "2c9a7f31-0000-4000-8000-0000000000aa",
        "owners": ["alice@corp"],
    }
    return ServicePrincipal(**{**base, **changes})


@pytest.fixture
def graph(
    azure_world: AzureWorld, monkeypatch: pytest.MonkeyPatch
) -> tuple[AzureWorld, GraphTenant, GraphAdapter]:
    monkeypatch.setenv("POLICYGATE_AZURE__SUBSCRIPTION_ID", SUB)
    monkeypatch.setenv("POLICYGATE_AZURE__RESOURCE_GROUP", RG)
    monkeypatch.setenv("POLICYGATE_AZURE__WORKSPACE", WS)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("POLICYGATE_DIRECTORY", "graph")
    tenant = GraphTenant(users=people())
    adapter = mount(azure_world.transport.session, tenant)
    return azure_world, tenant, adapter


def ids(reasons: list[dict[str, Any]]) -> set[str]:
    return {r["id"] for r in reasons}


def test_client_secret_on_the_deployment_identity_is_denied_acc005(
    graph: tuple[AzureWorld, GraphTenant, GraphAdapter], sqlite_url: str, no_network: list[str]
) -> None:
    world, tenant, adapter = graph
    tenant.service_principals = [deployment_identity(secrets=[SOON])]
    decision = decide(world, sqlite_url)
    assert decision["outcome"] == "deny" and ids(decision["reasons"]) == {"ACC-005"}, decision["reasons"]
    message = next(r["message"] for r in decision["reasons"] if r["id"] == "ACC-005")
    assert "holds a client secret" in message and "(directory: graph)" in message
    # the Azure source's credential, asked for Graph's scope; every Graph request authorised
    assert "https://graph.microsoft.com/.default" in world.credential.scopes
    assert adapter.authorized and all(adapter.authorized)
    assert no_network == []


def test_only_a_federated_credential_is_allowed(
    graph: tuple[AzureWorld, GraphTenant, GraphAdapter], sqlite_url: str, no_network: list[str]
) -> None:
    world, tenant, _ = graph
    tenant.service_principals = [deployment_identity(federated=["github-deploy"])]
    decision = decide(world, sqlite_url)
    assert decision["outcome"] == "allow", decision["reasons"]
    assert not ids(decision["reasons"]) & {"ACC-005", "OWN-004", "APR-004"}
    deployment = _evidence(sqlite_url)["identities"]["deployment"]
    assert deployment["source"] == "graph" and deployment["kind"] == "service" and deployment["active"]
    assert deployment["credentials"] == [{"type": "federated", "expires": None}]
    assert deployment["owners"] == [{"id": "alice@corp", "found": True, "active": True, "kind": "person"}]


def _evidence(db: str) -> dict[str, Any]:
    from policygate.decisions.log import DecisionLog

    log = DecisionLog(db)
    try:
        record = log.query(kind="decision", limit=1)[0]
        evidence: dict[str, Any] = record["evidence"]
        return evidence
    finally:
        log.close()


def test_owner_who_left_is_denied_own004_and_the_calls_are_batched(
    graph: tuple[AzureWorld, GraphTenant, GraphAdapter], sqlite_url: str, no_network: list[str]
) -> None:
    world, tenant, _ = graph
    world.tags["owner"] = "dana@corp"  # employeeLeaveDateTime in the past, account still enabled
    tenant.service_principals = [deployment_identity(federated=["github-deploy"])]
    decision = decide(world, sqlite_url)
    assert decision["outcome"] == "deny" and "OWN-004" in ids(decision["reasons"])
    owner = _evidence(sqlite_url)["identities"]["owner"]
    assert owner["found"] and not owner["active"] and owner["kind"] == "person"
    # owner, approver and deployment in one $batch, their groups/owners/credentials in a second;
    # the service's owners (people not looked up yet) likewise: two more
    assert tenant.batches == 4


def test_users_groups_manager_and_a_disabled_account(
    graph: tuple[AzureWorld, GraphTenant, GraphAdapter], no_network: list[str]
) -> None:
    world, tenant, _ = graph
    directory = GraphDirectory("https://graph.microsoft.com", world.credential, world.transport, 5.0, 0)
    found = directory.lookup(["ALICE@corp", "erin@corp", "nobody@corp", "bob@corp"])
    assert set(found) == {"alice@corp", "erin@corp", "bob@corp"}  # nobody: not found (404 in the batch)
    alice = found["alice@corp"]
    assert (alice.active, alice.kind, alice.groups, alice.manager, alice.department) == (
        True,
        "person",
        ("risk-ml",),  # the directory role in transitiveMemberOf is not a group
        "carol@corp",
        "Risk",
    )
    assert found["erin@corp"].active is False
    assert any(
        a.startswith("GET /v1.0/users/11111111-0000-4000-8000-00000000000a/transitiveMemberOf")
        for a in tenant.asked
    )
    assert tenant.batches == 2


def test_graph_unavailable_is_an_error_decision(
    graph: tuple[AzureWorld, GraphTenant, GraphAdapter], sqlite_url: str, no_network: list[str]
) -> None:
    world, tenant, adapter = graph
    tenant.service_principals = [deployment_identity(federated=["github-deploy"])]
    adapter.down = True
    decision = decide(world, sqlite_url)
    assert decision["outcome"] == "error"
    assert any("directory graph" in r["message"] and "503" in r["message"] for r in decision["reasons"])
    with pytest.raises(DirectoryError, match="HTTP 503"):
        GraphDirectory("https://graph.microsoft.com", world.credential, world.transport, 5.0, 0).lookup(
            ["bob@corp"]
        )


def test_national_cloud_url(
    graph: tuple[AzureWorld, GraphTenant, GraphAdapter], monkeypatch: pytest.MonkeyPatch
) -> None:
    from policygate.config import Settings
    from policygate.runtime import build_directory_of

    monkeypatch.setenv("POLICYGATE_GRAPH_URL", "https://graph.microsoft.us")
    directory = build_directory_of(Settings(), credential=graph[0].credential)
    assert directory is not None and directory.inner.url == "https://graph.microsoft.us"
    monkeypatch.setenv("POLICYGATE_GRAPH_URL", "http://graph.example")
    with pytest.raises(ValueError, match="graph_url"):
        Settings()


def test_a_slow_directory_is_bounded_by_the_collection_budget(
    graph: tuple[AzureWorld, GraphTenant, GraphAdapter],
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    no_network: list[str],
) -> None:
    """Each Graph call answers in 6 s (a lookup is two $batch calls, each within its request's own
    8 s timeout): the directory gets only what the 8 s budget has left after the Azure source, so
    the decision is an error by the deadline, not an answer 12 s later."""
    world, tenant, adapter = graph
    tenant.service_principals = [deployment_identity(federated=["github-deploy"])]
    monkeypatch.setenv("POLICYGATE_SOURCE_TIMEOUT_S", "8")
    adapter.delay_s = 6.0
    decision = decide(world, sqlite_url)
    took = time.monotonic() - adapter.sent_at[0]  # from the first Graph call to the decision answered
    assert decision["outcome"] == "error", decision
    assert any("budget" in r["message"] and "directory graph" in r["message"] for r in decision["reasons"]), (
        decision
    )
    assert took < 8, took  # within what the budget left; unbounded: two 6 s calls, > 12 s


def test_evidence_collect_looks_up_graph_on_the_embedded_transport(
    graph: tuple[AzureWorld, GraphTenant, GraphAdapter], no_network: list[str]
) -> None:
    world, tenant, _ = graph
    tenant.service_principals = [deployment_identity(secrets=[SOON])]
    result = runner.invoke(app, ["evidence", "collect", REF], obj=world.client_options())
    assert result.exit_code == 0, result.output
    identities = json.loads(result.stdout)["identities"]
    assert identities["directory"] == "graph" and identities["owner"]["groups"] == ["risk-ml"]
    assert identities["deployment"]["credentials"] == [{"type": "secret", "expires": SOON}]
    assert no_network == []
