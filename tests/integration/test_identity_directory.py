"""The identity directory (issue 29): a real MLflow server, the real OPA, a file: directory and a real
SCIM 2.0 server (scim2-server) on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from policygate.api.app import create_app
from policygate.cli import app
from policygate.config import Settings
from policygate.decisions.log import DecisionLog
from policygate.demo.mlflow_server import free_port
from policygate.demo.seed import ModelSpec, register
from tests.support.checkout import opa_binary, policy_copy, without_shipped_tests
from tests.support.webhooks import SECRET, alias_event, delivery, eventually, version_tags

runner = CliRunner()
IDENTITY_RULES = {"OWN-004", "APR-004", "ACC-005"}


def people(owner_active: bool = True) -> dict[str, Any]:
    return {
        "people": [
            {"id": "alice@corp", "active": owner_active, "kind": "person", "groups": ["risk-ml"]},
            {"id": "bob@corp", "active": True, "kind": "person", "groups": ["model-risk"]},
            {"id": "dana@corp", "active": False, "kind": "person", "groups": ["model-risk"]},
            {"id": "build-bot@corp", "active": True, "kind": "service"},
        ]
    }


def check(mlflow_uri: str, db: str, ref: str) -> tuple[int, dict[str, Any]]:
    args = ["check", ref, "--target", "production", "--requested-by", "ci@corp", "--mlflow-uri", mlflow_uri]
    result = runner.invoke(app, [*args, "--db", db, "--format", "json"])
    return result.exit_code, json.loads(result.stdout)


def deny_ids(decision: dict[str, Any]) -> set[str]:
    return {r["id"] for r in decision["reasons"]}


def warn_ids(decision: dict[str, Any]) -> set[str]:
    return {r["id"] for r in decision.get("warnings", [])}


@pytest.fixture(autouse=True)
def policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """rego/ with INT-003 warning in production: the seeded versions have no files (INT-003 is
    test_integrity*.py's), so the outcome here is the identity rules'."""
    rego = without_shipped_tests(policy_copy(tmp_path / "policy"), keep_helpers=False)
    data = json.loads((rego / "data.json").read_text())
    data["policygate_params"]["unverified_files"]["production"] = "warn"
    (rego / "data.json").write_text(json.dumps(data))
    monkeypatch.setenv("POLICYGATE_POLICY_DIR", str(rego))
    return rego


@pytest.fixture
def directory_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, Any]], Path]:
    path = tmp_path / "directory.yaml"

    def write(content: dict[str, Any]) -> Path:
        path.write_text(yaml.safe_dump(content))
        monkeypatch.setenv("POLICYGATE_DIRECTORY", f"file:{path}")
        monkeypatch.setenv("POLICYGATE_DIRECTORY_CACHE_S", "0")
        return path

    return write


# file: directory ----------------------------------------------------------------------------------


def test_inactive_owner_is_denied_own004_active_owner_allowed(
    mlflow_server: str, sqlite_url: str, directory_file: Callable[[dict[str, Any]], Path]
) -> None:
    spec = ModelSpec(f"id-{uuid.uuid4().hex[:8]}")
    ref = f"mlflow:models:/{spec.name}/{register(mlflow_server, spec)}"
    directory_file(people(owner_active=False))
    code, decision = check(mlflow_server, sqlite_url, ref)
    assert code == 1 and decision["outcome"] == "deny" and deny_ids(decision) == {"OWN-004"}
    directory_file(people(owner_active=True))
    code, decision = check(mlflow_server, sqlite_url, ref)
    assert code == 0 and decision["outcome"] == "allow", decision["reasons"]
    assert not warn_ids(decision) & IDENTITY_RULES
    stored = DecisionLog(sqlite_url).get(decision["decision_id"])
    assert stored is not None
    ids = stored["evidence"]["identities"]
    assert ids["directory"] == "file" and ids["owner"]["active"] is True
    assert [a["id"] for a in ids["approvers"]] == ["bob@corp"]


def test_inactive_approver_does_not_count(
    mlflow_server: str, sqlite_url: str, directory_file: Callable[[dict[str, Any]], Path]
) -> None:
    directory_file(people())
    spec = ModelSpec(
        f"id-{uuid.uuid4().hex[:8]}", run_user="erin@corp", approvals=[("dana@corp", "production", 0)]
    )
    code, decision = check(
        mlflow_server, sqlite_url, f"mlflow:models:/{spec.name}/{register(mlflow_server, spec)}"
    )
    assert code == 1 and deny_ids(decision) == {"APR-001", "APR-004"}


def test_decisions_api_and_webhook_deny_inactive_owner(
    mlflow_server: str, sqlite_url: str, directory_file: Callable[[dict[str, Any]], Path], policy: Path
) -> None:
    path = directory_file(people(owner_active=False))
    settings = Settings(
        db_url=sqlite_url,
        policy_dir=policy,
        opa_bin=opa_binary(),
        mlflow_uri=mlflow_server,
        mlflow_webhook_secret=SECRET,  # type: ignore[arg-type]
        directory=f"file:{path}",
        directory_cache_s=0,
    )
    spec = ModelSpec(f"id-{uuid.uuid4().hex[:8]}", alias="champion")
    version = register(mlflow_server, spec)
    with TestClient(create_app(settings)) as api:
        body = {"model": f"mlflow:models:/{spec.name}/{version}", "target": {"stage": "production"}}
        decided = api.post("/v1/decisions", json=body).json()
        assert decided["outcome"] == "deny" and deny_ids(decided) == {"OWN-004"}
        raw, headers = delivery(alias_event(spec.name, version))
        assert api.post("/v1/webhooks/mlflow", content=raw, headers=headers).status_code == 202
        tags = eventually(
            lambda: (t := version_tags(mlflow_server, spec.name, version)).get("policygate.decision") and t
        )
        assert tags["policygate.decision"] == "deny" and "OWN-004" in tags["policygate.reasons"]
        path.write_text(yaml.safe_dump(people(owner_active=True)))  # cache 0: the edit is seen at once
        assert api.post("/v1/decisions", json=body).json()["outcome"] == "allow"


def test_malformed_directory_file_is_an_error(
    mlflow_server: str, sqlite_url: str, directory_file: Callable[[dict[str, Any]], Path]
) -> None:
    path = directory_file(people())
    path.write_text("people: [{id: alice@corp}]\n")  # no active: refused, never an empty directory
    spec = ModelSpec(f"id-{uuid.uuid4().hex[:8]}")
    code, decision = check(
        mlflow_server, sqlite_url, f"mlflow:models:/{spec.name}/{register(mlflow_server, spec)}"
    )
    assert code == 2 and decision["outcome"] == "error" and "directory" in json.dumps(decision)


def test_no_directory_warns_and_denies_nothing_new(
    mlflow_server: str, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POLICYGATE_DIRECTORY", raising=False)
    spec = ModelSpec(f"id-{uuid.uuid4().hex[:8]}")
    code, decision = check(
        mlflow_server, sqlite_url, f"mlflow:models:/{spec.name}/{register(mlflow_server, spec)}"
    )
    assert code == 0 and decision["outcome"] == "allow"
    assert warn_ids(decision) & IDENTITY_RULES == {"OWN-004", "APR-004"}  # no deployment: ACC-005 n/a
    assert all(
        "not checked: no directory" in w["message"] for w in decision["warnings"] if w["id"] in IDENTITY_RULES
    )


# scim: a real SCIM 2.0 server ---------------------------------------------------------------------

TOKEN = "scim-test-token"


def start_scim(token: str | None = None) -> tuple[str, subprocess.Popen[bytes]]:
    """A real scim2-server on a free loopback port (answering), with ``token`` as its bearer token."""
    port = free_port()
    exe = str(Path(sys.executable).with_name("scim2-server"))
    extra = ["--bearer-token", token] if token else []
    proc = subprocess.Popen(
        [exe, "--port", str(port), *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{url}/ServiceProviderConfig", timeout=1, headers=auth).ok:
                return url, proc
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline and proc.poll() is None, "scim2-server did not start"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def scim_server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    url, proc = start_scim(TOKEN)
    h = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json"}
    ids = {}
    for name, active in (("alice@corp", True), ("bob@corp", True), ("carl@corp", True), ("dana@corp", False)):
        resp = requests.post(
            f"{url}/Users",
            headers=h,
            timeout=5,
            json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": name,
                "active": active,
            },
        )
        assert resp.status_code == 201, resp.text
        ids[name] = resp.json()["id"]
    group = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "model-risk",
        "members": [{"value": ids["bob@corp"]}, {"value": ids["dana@corp"]}],
    }
    assert requests.post(f"{url}/Groups", headers=h, json=group, timeout=5).status_code == 201
    yield url, proc
    proc.terminate()
    proc.wait(10)


def scim_env(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("POLICYGATE_DIRECTORY", f"scim:{url}")
    monkeypatch.setenv("POLICYGATE_DIRECTORY_TOKEN", TOKEN)


@pytest.mark.parametrize(
    ("changes", "denied"),
    [
        ({}, set()),
        ({"owner": "dana@corp"}, {"OWN-004"}),  # disabled
        ({"owner": "zoe@corp"}, {"OWN-004"}),  # unknown
        ({"approvals": [("dana@corp", "production", 0)]}, {"APR-001", "APR-004"}),  # disabled approver
        # high tier needs two approvers from model-risk: carl is active but outside it
        ({"risk_tier": "high", "approvals": [("bob@corp", "production", 0), ("carl@corp", "production", 0)]},
         {"APR-001", "APR-004"}),
    ],
)  # fmt: skip
def test_scim_directory_changes_the_outcome(
    changes: dict[str, Any],
    denied: set[str],
    scim_server: tuple[str, Any],
    mlflow_server: str,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scim_env(monkeypatch, scim_server[0])
    spec = ModelSpec(f"scim-{uuid.uuid4().hex[:8]}", run_user="erin@corp", **changes)
    code, decision = check(
        mlflow_server, sqlite_url, f"mlflow:models:/{spec.name}/{register(mlflow_server, spec)}"
    )
    assert deny_ids(decision) == denied, decision["reasons"]
    assert code == (1 if denied else 0)


def test_scim_wrong_token_is_an_error(
    scim_server: tuple[str, Any], mlflow_server: str, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    scim_env(monkeypatch, scim_server[0])
    monkeypatch.setenv("POLICYGATE_DIRECTORY_TOKEN", "wrong")
    spec = ModelSpec(f"scim-{uuid.uuid4().hex[:8]}")
    code, decision = check(
        mlflow_server, sqlite_url, f"mlflow:models:/{spec.name}/{register(mlflow_server, spec)}"
    )
    assert code == 2 and decision["outcome"] == "error"
    assert "wrong" not in json.dumps(decision)  # the token is never echoed


def test_scim_server_stopped_is_an_error_and_recorded(
    mlflow_server: str, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, proc = start_scim()
    try:
        monkeypatch.setenv("POLICYGATE_DIRECTORY", f"scim:{url}")
        spec = ModelSpec(f"scim-{uuid.uuid4().hex[:8]}")
        ref = f"mlflow:models:/{spec.name}/{register(mlflow_server, spec)}"
        code, decision = check(mlflow_server, sqlite_url, ref)
        # nobody is in this empty directory: the owner and the approver are unknown
        assert code == 1 and deny_ids(decision) == {"OWN-004", "APR-001", "APR-004"}
    finally:
        proc.terminate()
        proc.wait(10)
    code, decision = check(mlflow_server, sqlite_url, ref)
    assert code == 2 and decision["outcome"] == "error" and "directory" in json.dumps(decision)
    log = DecisionLog(sqlite_url)
    try:
        assert log.query(outcome="error")[0]["decision"]["subject"]["ref"] == ref
    finally:
        log.close()
