"""Webhooks end to end: real MLflow deliveries to a real `policygate serve`, write-back, refusals."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from policygate.api.app import create_app
from policygate.config import Settings
from policygate.decisions.log import DecisionLog
from policygate.demo.seed import ModelSpec, register
from tests.support.checkout import REGO, opa_binary
from tests.support.served import Served
from tests.support.webhooks import SECRET, alias_event, delivery, eventually, version_tags


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


def scoped_tags_written(uri: str, name: str, version: str, *stages: str) -> dict[str, str] | None:
    tags = version_tags(uri, name, version)
    done = all(tags.get(f"policygate.{s}.decision") not in (None, "pending") for s in stages)
    return tags if done else None


def test_write_back_is_per_target_and_the_unscoped_tags_name_theirs(
    make_client: Callable[..., TestClient], mlflow_server: str
) -> None:
    """A staging allow, then a production deny of one version: each stage keeps its own tags; the
    unscoped ones (a contract) describe the newest decision and say which target it was for."""
    client = make_client()
    spec = ModelSpec(f"scope-{uuid.uuid4().hex[:6]}", approvals=[])  # none: staging allows, production denies
    version = register(mlflow_server, spec)
    raw, headers = delivery(alias_event(spec.name, version, alias="staging"))
    assert client.post("/v1/webhooks/mlflow", content=raw, headers=headers).status_code == 202
    eventually(lambda: scoped_tags_written(mlflow_server, spec.name, version, "staging"))
    raw, headers = delivery(alias_event(spec.name, version, alias="champion"))
    assert client.post("/v1/webhooks/mlflow", content=raw, headers=headers).status_code == 202
    tags = eventually(lambda: scoped_tags_written(mlflow_server, spec.name, version, "staging", "production"))
    assert tags["policygate.staging.decision"] == "allow" and tags["policygate.staging.reasons"] == "none"
    assert tags["policygate.production.decision"] == "deny"
    assert "APR-001" in tags["policygate.production.reasons"].split(",")
    staging = client.get(f"/v1/decisions/{tags['policygate.staging.decision_id']}").json()
    production = client.get(f"/v1/decisions/{tags['policygate.production.decision_id']}").json()
    assert staging["target"]["stage"] == "staging" and staging["outcome"] == "allow"
    assert production["target"]["stage"] == "production" and production["outcome"] == "deny"
    # written last, so once it says deny the other unscoped tags are those of the production decision
    eventually(lambda: version_tags(mlflow_server, spec.name, version).get("policygate.decision") == "deny")
    tags = version_tags(mlflow_server, spec.name, version)
    assert tags["policygate.target"] == "production"
    assert tags["policygate.decision_id"] == production["decision_id"]
    assert tags["policygate.reasons"] == tags["policygate.production.reasons"]


def real_hook(mlflow_server: str, base: str, events: list[str]) -> Any:
    hook = MlflowClient(mlflow_server).create_webhook(
        name=f"policygate-{uuid.uuid4().hex[:6]}",
        url=f"{base}/v1/webhooks/mlflow",
        events=events,
        secret=SECRET,
    )
    time.sleep(1.5)  # the server caches its webhook list for MLFLOW_WEBHOOK_CACHE_TTL (1 s here)
    return hook


def log_size(db_url: str) -> int:
    log = DecisionLog(db_url, create=False)
    try:
        return log.head()[0]
    finally:
        log.close()


def test_mlflow_test_delivery_is_answered_as_a_test_and_decides_nothing(
    mlflow_server: str, tmp_path: Path
) -> None:
    """MLflow's "test webhook" (example_model/1) is no event about a model: nothing enters the log."""
    db = f"sqlite:///{tmp_path}/decisions.db"
    env = {
        "POLICYGATE_DB_URL": db,
        "POLICYGATE_MLFLOW_WEBHOOK_SECRET": SECRET,
        "POLICYGATE_WEBHOOK_DEFAULT_TARGET": "staging",  # so a model_version.created would be decided
        "MLFLOW_TRACKING_URI": mlflow_server,
    }
    with Served(env) as server:
        client = MlflowClient(mlflow_server)
        hook = real_hook(mlflow_server, server.base, ["model_version.created", "model_version_alias.created"])
        try:
            before = log_size(db)
            for event in ("model_version.created", "model_version_alias.created"):
                result = client.test_webhook(hook.webhook_id, event=event)  # type: ignore[arg-type]
                assert result.success and result.response_status == 200, result
                assert json.loads(result.response_body) == {"status": "test"}
            time.sleep(2)  # a decision would be made in the background by now
            assert log_size(db) == before
            metrics = requests.get(f"{server.base}/metrics", timeout=5).text
            assert 'policygate_webhook_deliveries_total{result="test",source="mlflow"} 2.0' in metrics
        finally:
            client.delete_webhook(hook.webhook_id)
    for version in client.search_model_versions("name='example_model'"):  # nothing written back
        assert not [k for k in version.tags if k.startswith("policygate.")]


def test_example_data_about_a_real_model_is_no_test(
    make_client: Callable[..., TestClient], mlflow_server: str
) -> None:
    """Only the registry knowing no such model makes MLflow's example data a test: a real model that
    happens to be called example_model is decided like any other."""
    from mlflow.webhooks.types import ModelVersionAliasCreatedPayload

    client = make_client()
    data = dict(ModelVersionAliasCreatedPayload.example())
    if not any(m.name == data["name"] for m in MlflowClient(mlflow_server).search_registered_models()):
        register(mlflow_server, ModelSpec(str(data["name"])))
    body = {"entity": "model_version_alias", "action": "created", "data": data}
    raw, headers = delivery(body)
    resp = client.post("/v1/webhooks/mlflow", content=raw, headers=headers)
    assert resp.status_code == 200 and resp.json()["status"] == "ignored"  # example_alias: no stage
    assert records(client, "delivery") == []


def train_in_a_run(uri: str, name: str, keep_running: Callable[[], None]) -> str:
    """What a data scientist writes: log_model(registered_model_name=...) inside the training run,
    which then goes on (evaluation, more logging) while MLflow has already sent model_version.created."""
    import mlflow
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from policygate.demo.seed import REPO, _training_data

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(f"{name}-training")
    features, labels = _training_data()
    tags = {
        "mlflow.user": "dana@corp",
        "mlflow.source.name": "train.py",
        "mlflow.source.git.commit": "9f2c1e7a4b6d8f0e1a3c5b7d9e2f4a6c8b0d1e3f",
        "mlflow.source.git.repoURL": REPO,
    }
    with mlflow.start_run(tags=tags):
        frame = pd.DataFrame(features, columns=["amount", "velocity", "age_days", "merchant_risk"])
        frame["label"] = labels
        dataset = mlflow.data.from_pandas(  # type: ignore[attr-defined]
            frame, source="s3://example-corp-data/transactions/2026-10.parquet", name="transactions"
        )
        mlflow.log_input(dataset, context="training")
        model = LogisticRegression().fit(features, labels)
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=name)
        client = MlflowClient(uri)
        for key, value in {
            "owner": "alice@corp",
            "team": "risk-ml",
            "use_case": "fraud",
            "risk_tier": "medium",
        }.items():
            client.set_registered_model_tag(name, key, value)
        keep_running()
    return str(info.registered_model_version)


def test_version_registered_inside_its_run_is_decided_once_the_run_ends(
    mlflow_server: str, tmp_path: Path
) -> None:
    """model_version.created arrives while the run is RUNNING: pending (never deny) until it ends, then
    one ALLOW, even when policygate is killed and restarted while it waits."""
    import threading

    db = f"sqlite:///{tmp_path}/decisions.db"
    env = {
        "POLICYGATE_DB_URL": db,
        "POLICYGATE_MLFLOW_WEBHOOK_SECRET": SECRET,
        "POLICYGATE_WEBHOOK_DEFAULT_TARGET": "staging",
        "MLFLOW_TRACKING_URI": mlflow_server,
    }
    name = f"inrun-{uuid.uuid4().hex[:6]}"
    seen: set[tuple[str, str]] = set()
    watching = threading.Event()

    def watch() -> None:  # every value the decision tags take, as often as MLflow answers
        while not watching.is_set():
            try:
                for version in MlflowClient(mlflow_server).search_model_versions(f"name='{name}'"):
                    seen.update((k, v) for k, v in version.tags.items() if k.endswith(".decision"))
            except Exception:  # noqa: BLE001 - not registered yet
                pass
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    first = Served(env).__enter__()
    hook = real_hook(mlflow_server, first.base, ["model_version.created"])
    servers = [first]
    try:

        def keep_running() -> None:
            eventually(lambda: ("policygate.staging.decision", "pending") in seen, timeout_s=30)
            assert log_size(db) and _decisions(db) == []  # the delivery is recorded, nothing decided
            assert first.proc is not None
            first.proc.kill()  # no goodbye: the waiting delivery lives only in the log
            first.__exit__(None, None, None)
            servers.append(Served(env).__enter__())
            time.sleep(3)  # the restarted service has looked at the run again: still running
            assert _decisions(db) == []

        version = train_in_a_run(mlflow_server, name, keep_running)
        tags = eventually(  # the unscoped decision tag is written last
            lambda: (t := version_tags(mlflow_server, name, version)).get("policygate.decision") and t
        )
        assert tags["policygate.staging.decision"] == "allow", tags
        assert tags["policygate.decision"] == "allow" and tags["policygate.target"] == "staging"
        time.sleep(2)
        [decision] = _decisions(db)
        assert (
            decision["outcome"] == "allow"
            and decision["subject"]["ref"] == f"mlflow:models:/{name}/{version}"
        )
    finally:
        watching.set()
        MlflowClient(mlflow_server).delete_webhook(hook.webhook_id)
        for server in servers:
            server.__exit__(None, None, None)
    assert not [v for _, v in seen if v not in ("pending", "allow")], seen


def _decisions(db_url: str) -> list[dict[str, Any]]:
    log = DecisionLog(db_url, create=False)
    try:
        return [r["decision"] for r in log.query(kind="decision")]
    finally:
        log.close()


def version_of_a_running_run(uri: str, name: str) -> tuple[str, str]:
    """A registered version whose training run is still RUNNING: (version, run id)."""
    client = MlflowClient(uri)
    client.create_registered_model(name, tags={"owner": "alice@corp", "team": "risk-ml", "risk_tier": "low"})
    experiment = client.create_experiment(f"{name}-training")
    run = client.create_run(experiment, tags={"mlflow.user": "dana@corp"})
    mv = client.create_model_version(name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    return str(mv.version), run.info.run_id


def test_a_run_that_fails_is_denied_and_one_still_running_after_the_wait_is_an_error(
    make_client: Callable[..., TestClient], mlflow_server: str
) -> None:
    """Pending while the run goes on; a FAILED run is decided (denied) when it ends; a run still
    RUNNING POLICYGATE_WEBHOOK_RUN_WAIT_S after the delivery is an error naming the wait."""
    client = make_client(webhook_run_wait_s=20)

    def pending(name: str, version: str) -> bool:
        return version_tags(mlflow_server, name, version).get("policygate.staging.decision") == "pending"

    failing, stuck = (f"{kind}-{uuid.uuid4().hex[:6]}" for kind in ("fails", "stuck"))
    failing_version, failing_run = version_of_a_running_run(mlflow_server, failing)
    raw, headers = delivery(alias_event(failing, failing_version, alias="staging"))
    assert client.post("/v1/webhooks/mlflow", content=raw, headers=headers).status_code == 202
    eventually(lambda: pending(failing, failing_version))
    assert records(client, "decision") == []
    MlflowClient(mlflow_server).set_terminated(failing_run, status="FAILED")
    failed = eventually(lambda: scoped_tags_written(mlflow_server, failing, failing_version, "staging"))
    assert (
        failed["policygate.staging.decision"] == "deny" and "LIN-002" in failed["policygate.staging.reasons"]
    )

    stuck_version, _ = version_of_a_running_run(mlflow_server, stuck)
    raw, headers = delivery(alias_event(stuck, stuck_version, alias="staging"))
    assert client.post("/v1/webhooks/mlflow", content=raw, headers=headers).status_code == 202
    eventually(lambda: pending(stuck, stuck_version))
    waited = eventually(lambda: scoped_tags_written(mlflow_server, stuck, stuck_version, "staging"))
    assert waited["policygate.staging.decision"] == "error"
    assert waited["policygate.staging.reasons"] == "ERR-RUN-WAIT"
    [error] = [r["decision"] for r in records(client, "decision") if r["decision"]["outcome"] == "error"]
    assert "still RUNNING" in error["reasons"][0]["message"]
    assert "POLICYGATE_WEBHOOK_RUN_WAIT_S" in error["reasons"][0]["message"]
    assert len(records(client, "decision")) == 2
