"""Webhooks end to end: real MLflow deliveries to a real `policygate serve`, write-back, refusals."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from policygate.api.app import create_app
from policygate.config import Settings
from policygate.demo.seed import ModelSpec, register
from policygate.webhooks.signatures import sign
from tests.conftest import REGO, opa_binary
from tests.served import Served

SECRET = "webhook-test-secret"
T = TypeVar("T")


def eventually(fn: Callable[[], T | None], timeout_s: float = 60.0, every_s: float = 0.25) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"condition not met within {timeout_s} s")


def version_tags(uri: str, name: str, version: str) -> dict[str, str]:
    return dict(MlflowClient(uri).get_model_version(name, version).tags)


def delivery(body: dict[str, Any], *, secret: str = SECRET, delivery_id: str | None = None, age_s: int = 0):  # type: ignore[no-untyped-def]
    raw = json.dumps(body).encode()
    did = delivery_id or str(uuid.uuid4())
    ts = str(int(time.time()) - age_s)
    headers = {
        "content-type": "application/json",
        "x-mlflow-delivery-id": did,
        "x-mlflow-timestamp": ts,
        "x-mlflow-signature": sign(secret, did, ts, raw),
    }
    return raw, headers


def alias_event(name: str, version: str, alias: str = "champion") -> dict[str, Any]:
    return {
        "entity": "model_version_alias",
        "action": "created",
        "timestamp": "2026-11-27T00:00:00Z",
        "data": {"name": name, "alias": alias, "version": version},
    }


@pytest.fixture
def make_client(mlflow_server: str, sqlite_url: str) -> Iterator[Callable[..., TestClient]]:
    clients: list[Any] = []

    def make(**overrides: Any) -> TestClient:
        settings = Settings(
            db_url=sqlite_url,
            policy_dir=REGO,
            opa_bin=opa_binary(),
            mlflow_uri=mlflow_server,
            mlflow_webhook_secret=SECRET,  # type: ignore[arg-type]
            eventgrid_secret="eg-secret",  # type: ignore[arg-type]
            **overrides,
        )
        ctx = TestClient(create_app(settings))
        clients.append(ctx)
        return ctx.__enter__()

    yield make
    for ctx in clients:
        ctx.__exit__(None, None, None)


def records(client: TestClient, kind: str) -> list[dict[str, Any]]:
    return client.app.state.service.log.query(kind=kind)  # type: ignore[attr-defined,no-any-return]


def test_signed_alias_delivery_is_decided_and_written_back(
    make_client: Callable[..., TestClient], mlflow_server: str
) -> None:
    client = make_client()
    spec = ModelSpec(f"wh-{uuid.uuid4().hex[:6]}", alias="champion")
    version = register(mlflow_server, spec)
    raw, headers = delivery(alias_event(spec.name, version))
    resp = client.post("/v1/webhooks/mlflow", content=raw, headers=headers)
    assert resp.status_code == 202 and resp.json()["status"] == "accepted"
    tags = eventually(
        lambda: (t := version_tags(mlflow_server, spec.name, version)).get("policygate.decision") and t
    )
    assert tags["policygate.decision"] == "allow" and tags["policygate.reasons"] == "none"
    decision = client.get(f"/v1/decisions/{tags['policygate.decision_id']}").json()
    assert decision["target"]["stage"] == "production" and decision["requested_by"] == "mlflow-webhook"
    # MLflow retries the same delivery: already handled, no second decision
    again = client.post("/v1/webhooks/mlflow", content=raw, headers=headers)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert len(records(client, "decision")) == 1


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        (lambda raw, h: (raw, {**h, "x-mlflow-signature": "v1,AAAA"}), 401),
        (lambda raw, h: (raw, {k: v for k, v in h.items() if k != "x-mlflow-signature"}), 401),
        (lambda raw, h: (raw.replace(b"champion", b"prod"), h), 401),  # body tampered after signing
        (lambda raw, h: (raw, {**h, "x-mlflow-delivery-id": "another-id"}), 401),
    ],
)
def test_forged_deliveries_change_nothing(
    make_client: Callable[..., TestClient], mutate: Callable[..., Any], status: int
) -> None:
    client = make_client()
    raw, headers = mutate(*delivery(alias_event("fraud", "1")))
    resp = client.post("/v1/webhooks/mlflow", content=raw, headers=headers)
    assert resp.status_code == status
    assert records(client, "delivery") == [] and records(client, "decision") == []


def test_stale_delivery_is_400_and_changes_nothing(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    raw, headers = delivery(alias_event("fraud", "1"), age_s=600)
    resp = client.post("/v1/webhooks/mlflow", content=raw, headers=headers)
    assert resp.status_code == 400 and resp.json()["error"] == "stale_delivery"
    assert records(client, "delivery") == []


def test_unconfigured_secret_refuses_everything(mlflow_server: str, sqlite_url: str) -> None:
    settings = Settings(db_url=sqlite_url, policy_dir=REGO, opa_bin=opa_binary(), mlflow_uri=mlflow_server)
    with TestClient(create_app(settings)) as client:
        raw, headers = delivery(alias_event("fraud", "1"))
        assert client.post("/v1/webhooks/mlflow", content=raw, headers=headers).status_code == 503
        assert client.post("/v1/webhooks/azure-eventgrid?code=x", json=[]).status_code == 503


def test_enforcement_removes_the_alias_on_deny(
    make_client: Callable[..., TestClient], mlflow_server: str
) -> None:
    client = make_client(webhook_enforce=True)
    spec = ModelSpec(f"enf-{uuid.uuid4().hex[:6]}", alias="champion", owner=None)
    version = register(mlflow_server, spec)
    raw, headers = delivery(alias_event(spec.name, version))
    assert client.post("/v1/webhooks/mlflow", content=raw, headers=headers).status_code == 202
    tags = eventually(
        lambda: (t := version_tags(mlflow_server, spec.name, version)).get("policygate.decision") and t
    )
    assert tags["policygate.decision"] == "deny" and "OWN-001" in tags["policygate.reasons"].split(",")
    eventually(lambda: records(client, "enforcement"))
    assert "champion" not in MlflowClient(mlflow_server).get_registered_model(spec.name).aliases


def test_eventgrid_handshakes_and_decides_the_named_model(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    validation = [
        {
            "id": "v1",
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "data": {"validationCode": "c0de"},
        }
    ]
    assert client.post("/v1/webhooks/azure-eventgrid", json=validation).status_code == 401
    ok = client.post("/v1/webhooks/azure-eventgrid?code=eg-secret", json=validation)
    assert ok.status_code == 200 and ok.json() == {"validationResponse": "c0de"}
    options = client.options(
        "/v1/webhooks/azure-eventgrid",
        headers={"WebHook-Request-Origin": "eventgrid.azure.net", "X-Policygate-Secret": "eg-secret"},
    )
    assert options.status_code == 200 and options.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
    topic = (
        "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-ml"
        "/providers/Microsoft.MachineLearningServices/workspaces/ws1"
    )
    event = {
        "specversion": "1.0",
        "id": f"ce-{uuid.uuid4()}",
        "source": topic,
        "type": "Microsoft.MachineLearningServices.ModelDeployed",
        "data": {"serviceName": "ep1", "modelIds": "fraud:3"},
    }
    resp = client.post(
        "/v1/webhooks/azure-eventgrid", json=event, headers={"X-Policygate-Secret": "eg-secret"}
    )
    assert resp.status_code == 202
    [record] = eventually(lambda: records(client, "decision"))
    assert record["decision"]["subject"]["ref"].endswith("/workspaces/ws1/models/fraud/versions/3")
    assert record["decision"]["target"]["stage"] == "production"
    assert record["decision"]["allow"] is False  # whatever the Azure source says, never allow without it
    dup = client.post(
        "/v1/webhooks/azure-eventgrid", json=event, headers={"X-Policygate-Secret": "eg-secret"}
    )
    assert dup.status_code == 200 and dup.json()["status"] == "duplicate"


def test_real_mlflow_server_delivers_to_a_real_policygate(mlflow_server: str, tmp_path: Path) -> None:
    """Set the champion alias in MLflow; without anyone running a command the decision tags appear."""
    env = {
        "POLICYGATE_DB_URL": f"sqlite:///{tmp_path}/decisions.db",
        "POLICYGATE_MLFLOW_WEBHOOK_SECRET": SECRET,
        "MLFLOW_TRACKING_URI": mlflow_server,
    }
    with Served(env) as server:
        client = MlflowClient(mlflow_server)
        hook = client.create_webhook(
            name=f"policygate-{uuid.uuid4().hex[:6]}",
            url=f"{server.base}/v1/webhooks/mlflow",
            events=["model_version_alias.created"],
            secret=SECRET,
        )
        try:
            spec = ModelSpec(f"real-{uuid.uuid4().hex[:6]}")
            version = register(mlflow_server, spec)
            time.sleep(1.5)  # the server caches its webhook list for MLFLOW_WEBHOOK_CACHE_TTL (1 s here)
            client.set_registered_model_alias(spec.name, "champion", version)
            tags = eventually(
                lambda: (
                    (t := version_tags(mlflow_server, spec.name, version)).get("policygate.decision") and t
                )
            )
            assert tags["policygate.decision"] == "allow"
            decision = requests.get(
                f"{server.base}/v1/decisions/{tags['policygate.decision_id']}", timeout=5
            ).json()
            assert decision["subject"]["ref"] == f"mlflow:models:/{spec.name}/{version}"
        finally:
            client.delete_webhook(hook.webhook_id)
    assert SECRET not in server.output and "x-mlflow-signature" not in server.output.lower()
