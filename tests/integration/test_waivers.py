"""Waivers: recorded in the log's chain, pushed to the real OPA (managed or external), applied by the
policy until they expire, revoked on demand; CLI and API."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from policygate.api.app import create_app
from policygate.cli import app
from policygate.config import Settings
from policygate.decisions.log import DecisionLog
from policygate.evidence import EvidenceV1
from policygate.policy import waiver_sync, waivers
from policygate.runtime import open_runtime, open_service
from policygate.runtime.engines import start_engine
from tests.support.checkout import EXAMPLES, REGO, load_example, opa_binary

runner = CliRunner()
MODEL = "mlflow:models:/fraud-detector/7"


def cli(*args: str, **env: str) -> Any:
    return runner.invoke(app, list(args), env=env or None)


def grant(
    sqlite_url: str, *extra: str, rule: str = "APR-002", model: str = MODEL, **env: str
) -> dict[str, Any]:
    result = cli(
        "waiver", "add", "--rule", rule, "--model", model, "--reason", "CAB-77 accepted the owner's approval",
        "--approved-by", "ciso@example.com", "--expires", "30d", "--db", sqlite_url, "--format", "json",
        *extra, **env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    waiver: dict[str, Any] = json.loads(result.stdout)
    return waiver


def evaluate(sqlite_url: str, name: str = "APR-002") -> dict[str, Any]:
    result = cli("evaluate", str(EXAMPLES / f"{name}.json"), "--db", sqlite_url, "--format", "json")
    decision: dict[str, Any] = json.loads(result.stdout)
    return decision


def log_records(sqlite_url: str, kind: str) -> list[dict[str, Any]]:
    log = DecisionLog(sqlite_url)
    try:
        assert log.verify().ok
        return log.query(kind=kind, limit=500)
    finally:
        log.close()


def test_grant_apply_list_revoke_through_the_cli(sqlite_url: str) -> None:
    assert evaluate(sqlite_url)["outcome"] == "deny"
    waiver = grant(sqlite_url, "--target", "production")
    assert waiver["status"] == "active" and waiver["targets"] == ["production"]
    waived = evaluate(sqlite_url)
    assert waived["outcome"] == "allow" and waived["reasons"] == []
    [warning] = waived["warnings"]
    assert warning["id"] == "APR-002" and warning["waiver"] == waiver["id"]  # the decision records it
    listed = cli("waiver", "list", "--db", sqlite_url)
    assert (
        listed.exit_code == 0 and f"{waiver['id']}  active   APR-002  {MODEL}  [production]" in listed.stdout
    )
    revoked = cli(
        "waiver", "revoke", waiver["id"], "--by", "bob@example.com", "--reason", "done", "--db", sqlite_url
    )
    assert revoked.exit_code == 0, revoked.output
    assert "revoked" in revoked.stdout and "by bob@example.com: done" in revoked.stdout
    assert evaluate(sqlite_url)["outcome"] == "deny"
    assert cli("waiver", "list", "--db", sqlite_url).stdout.strip() == "no active waivers"
    everything = json.loads(cli("waiver", "list", "--all", "--db", sqlite_url, "-f", "json").stdout)
    assert [(w["id"], w["status"], w["revoked_by"]) for w in everything["waivers"]] == [
        (waiver["id"], "revoked", "bob@example.com")
    ]
    # both changes are records in the verified chain
    changes = log_records(sqlite_url, "waiver")
    assert [r["action"] for r in reversed(changes)] == ["add", "revoke"]
    assert changes[-1]["waiver"]["approved_by"] == "ciso@example.com"
    again = cli("waiver", "revoke", waiver["id"], "--db", sqlite_url)
    assert again.exit_code == 2 and "already revoked" in again.stderr


def test_a_waiver_covers_only_its_rule_model_and_targets(sqlite_url: str) -> None:
    grant(sqlite_url, "--target", "staging")
    grant(sqlite_url, model="mlflow:models:/fraud-detector/8")
    grant(sqlite_url, rule="APR-001")
    assert evaluate(sqlite_url)["outcome"] == "deny"
    glob = grant(sqlite_url, model="mlflow:models:/fraud-*/*")
    decision = evaluate(sqlite_url)
    assert decision["outcome"] == "allow" and decision["warnings"][0]["waiver"] == glob["id"]


def test_an_expired_waiver_has_no_effect(sqlite_url: str) -> None:
    waiver = grant(sqlite_url, "--expires", "1d")
    doc = load_example("APR-002")
    expiry = datetime.fromisoformat(waiver["expires"].replace("Z", "+00:00"))
    settings = Settings(db_url=sqlite_url, policy_dir=REGO, opa_bin=opa_binary())
    with open_runtime(settings) as runtime:
        doc["request"]["requested_at"] = waiver["expires"]  # the request comes when it expires
        at_expiry = runtime.service.evaluate(EvidenceV1.model_validate(doc))
        # once expired (by the clock), the waiver is not even pushed any more
        sync = runtime.waivers
        assert sync is not None
        active_then = [w.id for w in sync.state.active(expiry)]
    assert at_expiry.outcome == "deny" and [r.id for r in at_expiry.reasons] == ["APR-002"]
    assert active_then == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--expires", "2020-01-01T00:00:00Z"], "expires: 2020-01-01T00:00:00Z is not in the future"),
        (["--expires", "400d"], "is more than 365 days ahead (the maximum)"),
        (["--expires", "2262-06-01T00:00:00Z"], "is more than 365 days ahead (the maximum)"),
        (["--expires", "soon"], "expires: invalid time 'soon'"),
        (["--rule", "APR-999"], "rule: no rule APR-999 in the policies"),
        (["--model", "mlflow:models:/fraud-detector@champion"], "names an alias"),
        (["--target", "prod"], "targets: unknown stage 'prod'"),
    ],
)
def test_bad_waivers_are_refused_and_nothing_is_recorded(
    sqlite_url: str, args: list[str], message: str
) -> None:
    base = {
        "--rule": "APR-002", "--model": MODEL, "--reason": "r", "--approved-by": "ciso", "--expires": "30d",
    }  # fmt: skip
    pairs = dict(base)
    pairs.update(dict(zip(args[::2], args[1::2], strict=True)))
    result = cli("waiver", "add", *[x for kv in pairs.items() for x in kv], "--db", sqlite_url)
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists() or log_records(sqlite_url, "waiver") == []


def test_a_waiver_without_expiry_is_refused(sqlite_url: str) -> None:
    result = cli(
        "waiver", "add", "--rule", "APR-002", "--model", MODEL, "--reason", "r", "--approved-by", "c",
        "--db", sqlite_url,
    )  # fmt: skip
    assert result.exit_code == 2 and "expires: a waiver must expire" in result.stderr


def test_unknown_waiver_and_missing_log_are_exit_2(sqlite_url: str, tmp_path: Path) -> None:
    grant(sqlite_url)
    unknown = cli("waiver", "revoke", "WVR-00000000", "--db", sqlite_url)
    assert unknown.exit_code == 2 and "no waiver 'WVR-00000000'" in unknown.stderr
    missing = cli("waiver", "list", "--db", f"sqlite:///{tmp_path}/none.db")
    assert missing.exit_code == 2 and "no decision log at" in missing.stderr


def test_an_external_opa_gets_the_waivers_from_the_cli_and_at_service_start(sqlite_url: str) -> None:
    with start_engine(None, opa_binary(), REGO, engine="http") as external:
        revision = external._fetch_revision()
        assert external.token  # the managed OPA answers only its token holder
        first = grant(sqlite_url, POLICYGATE_OPA_URL=external.url, POLICYGATE_OPA_TOKEN=external.token)
        pushed = external.get_data(waivers.DATA_PATH)
        assert [w["id"] for w in pushed] == [first["id"]]
        assert set(pushed[0]) == {"id", "rule", "model", "targets", "reason", "approved_by", "expires"}
        # a change made where the OPA is not reachable: the service pushes it when it starts
        second = grant(sqlite_url, rule="APR-001")
        assert len(external.get_data(waivers.DATA_PATH)) == 1
        settings = Settings(
            db_url=sqlite_url,
            opa_url=external.url,
            opa_token=external.token,
            policy_dir=REGO,
            opa_bin=opa_binary(),
        )
        with open_service(settings):
            ids = sorted(w["id"] for w in external.get_data(waivers.DATA_PATH))
        assert ids == sorted([first["id"], second["id"]])
        assert external._fetch_revision() == revision  # waivers are not part of the policy revision


def test_replicas_refresh_from_the_log(sqlite_url: str) -> None:
    log = DecisionLog(sqlite_url)
    with start_engine(None, opa_binary(), REGO) as engine:
        sync = waiver_sync.WaiverSync(engine, log, interval_s=0.2).start()
        try:
            assert engine.get_data(waivers.DATA_PATH) == []
            waiver = grant(sqlite_url)  # another process (the CLI) writes the log
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and sync.pushed != [waiver["id"]]:
                time.sleep(0.05)
            assert [w["id"] for w in engine.get_data(waivers.DATA_PATH)] == [waiver["id"]]
        finally:
            sync.stop()
            log.close()


# API ---------------------------------------------------------------------------


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    settings = Settings(db_url=sqlite_url, policy_dir=REGO, opa_bin=opa_binary())
    with TestClient(create_app(settings)) as c:
        yield c


def test_api_grant_list_revoke(client: TestClient) -> None:
    evidence = load_example("APR-002")
    assert client.post("/v1/evaluate", json={"evidence": evidence}).json()["outcome"] == "deny"
    body = {
        "rule": "APR-002", "model": MODEL, "targets": ["production"], "reason": "CAB-77",
        "approved_by": "ciso@example.com", "expires": "7d",
    }  # fmt: skip
    resp = client.post("/v1/waivers", json=body)
    assert resp.status_code == 201, resp.text
    waiver = resp.json()
    assert waiver["status"] == "active" and waiver["id"].startswith("WVR-")
    decision = client.post("/v1/evaluate", json={"evidence": evidence}).json()  # applied at once
    assert decision["outcome"] == "allow" and decision["warnings"][0]["waiver"] == waiver["id"]
    assert [w["id"] for w in client.get("/v1/waivers").json()["waivers"]] == [waiver["id"]]
    gone = client.delete(f"/v1/waivers/{waiver['id']}", params={"reason": "fixed"})
    assert gone.status_code == 200 and gone.json()["status"] == "revoked"
    assert gone.json()["revoke_reason"] == "fixed"
    assert client.post("/v1/evaluate", json={"evidence": evidence}).json()["outcome"] == "deny"
    assert client.get("/v1/waivers").json() == {"waivers": []}
    assert client.get("/v1/waivers?all=true").json()["waivers"][0]["status"] == "revoked"
    assert client.delete(f"/v1/waivers/{waiver['id']}").status_code == 409
    assert client.delete("/v1/waivers/WVR-00000000").status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"expires": None}, "expires"),
        ({"expires": "2020-01-01T00:00:00Z"}, "expires"),
        ({"expires": "3y"}, "expires"),
        ({"rule": "NOPE-1"}, "rule"),
        ({"model": "mlflow:models:/fraud@champion"}, "model"),
        ({"targets": ["prod"]}, "targets"),
        ({"color": "red"}, "color"),
    ],
)
def test_api_refuses_bad_waivers_with_422_naming_the_field(
    client: TestClient, change: dict[str, Any], field: str
) -> None:
    body: dict[str, Any] = {
        "rule": "APR-002", "model": MODEL, "reason": "r", "approved_by": "ciso", "expires": "7d", **change,
    }  # fmt: skip
    body = {k: v for k, v in body.items() if v is not None}
    resp = client.post("/v1/waivers", json=body)
    assert resp.status_code == 422, resp.text
    assert field in json.dumps(resp.json())
    assert client.get("/v1/waivers?all=true").json() == {"waivers": []}


def test_api_grant_is_durable_even_when_opa_does_not_take_it(sqlite_url: str) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    settings = Settings(db_url=sqlite_url, opa_url=closed, policy_dir=REGO, opa_bin=opa_binary())
    body = {"rule": "APR-002", "model": MODEL, "reason": "r", "approved_by": "ciso", "expires": "7d"}
    with TestClient(create_app(settings)) as c:
        resp = c.post("/v1/waivers", json=body)
        assert resp.status_code == 201, resp.text
        assert [w["id"] for w in c.get("/v1/waivers").json()["waivers"]] == [resp.json()["id"]]
