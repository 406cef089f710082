"""A model whose files could not be hashed is never a silent ALLOW: INT-003 denies production and warns
elsewhere, naming why and how much was read (real MLflow servers, the real OPA). The files stream from
the tracking server's proxied store into the hash, several at a time, and a file replaced after an
allow is still caught there (INT-002)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from policygate.api.app import create_app
from policygate.cli import app
from policygate.config import Settings
from policygate.demo.mlflow_server import MlflowServer
from policygate.demo.seed import ModelSpec, register
from policygate.integrity.manifest import manifest_of
from tests.support.checkout import REGO, opa_binary
from tests.support.processes import record_of

runner = CliRunner()


def check(mlflow_uri: str, db: str, ref: str, stage: str, fmt: str = "json") -> tuple[int, str]:
    result = runner.invoke(
        app, ["check", ref, "-t", stage, "--mlflow-uri", mlflow_uri, "--db", db, "-f", fmt]
    )
    assert result.exit_code in (0, 1) and result.stdout, result.output
    return result.exit_code, result.stdout


def trained(mlflow_uri: str) -> str:
    name = f"big-{uuid.uuid4().hex[:8]}"
    return f"mlflow:models:/{name}/{register(mlflow_uri, ModelSpec(name), train=True)}"


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A tracking server serving its artifacts itself (``--serve-artifacts``): clients read the files
    through it, as in most deployments."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-proxied"), serve_artifacts=True)
    server.start()
    yield server
    server.stop()


def test_files_over_the_cap_deny_production_and_warn_in_staging(
    mlflow_server: str, sqlite_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ref = trained(mlflow_server)
    monkeypatch.setenv("POLICYGATE_ARTIFACTS__MAX_BYTES", "1000")
    code, out = check(mlflow_server, sqlite_url, ref, "production")
    decision = json.loads(out)
    assert code == 1 and decision["outcome"] == "deny"
    assert [r["id"] for r in decision["reasons"]] == ["INT-003"]
    message = decision["reasons"][0]["message"]
    assert '"size_cap"' in message and "0 bytes read" in message and "cap of 1000 bytes" in message
    evidence = record_of(sqlite_url, decision["decision_id"])["evidence"]
    unverified = evidence["artifacts_unverified"]
    assert evidence["artifacts"] is None and "artifacts" in evidence["collection"]["gaps"]
    assert unverified["reason"] == "size_cap" and unverified["size"] > 1000 and unverified["files"] >= 2
    assert unverified["bytes_read"] == 0 and unverified["max_bytes"] == 1000
    assert f"{unverified['size']} bytes listed" in message

    code, out = check(mlflow_server, sqlite_url, ref, "staging")
    staged = json.loads(out)
    assert code == 0 and "INT-003" in [w["id"] for w in staged["warnings"]], staged
    # an allow on files that were not verified has no manifest: no attestation for a deploy step
    key = tmp_path / "k"
    assert runner.invoke(app, ["key", "create", "--out", str(key)]).exit_code == 0
    settings = Settings(db_url=sqlite_url, policy_dir=REGO, opa_bin=opa_binary(), checkpoint_key=key)
    with TestClient(create_app(settings)) as api:
        refused = api.get(f"/v1/decisions/{staged['decision_id']}/attestation")
    assert refused.status_code == 409, refused.text
    assert "not verified (INT-003: size_cap" in refused.json()["message"]

    _, junit = check(mlflow_server, sqlite_url, ref, "production", "junit")
    assert "INT-003" in junit and "<failure" in junit
    _, github = check(mlflow_server, sqlite_url, ref, "production", "github")
    assert any(line.startswith("::error") and "INT-003" in line for line in github.splitlines()), github
    _, github = check(mlflow_server, sqlite_url, ref, "staging", "github")
    assert any(line.startswith("::warning") and "INT-003" in line for line in github.splitlines()), github


def test_files_not_read_within_the_time_budget_deny_production(
    mlflow_server: str, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = trained(mlflow_server)
    monkeypatch.setenv("POLICYGATE_ARTIFACTS__TIMEOUT_S", "0.000001")
    code, out = check(mlflow_server, sqlite_url, ref, "production")
    decision = json.loads(out)
    assert code == 1 and [r["id"] for r in decision["reasons"]] == ["INT-003"]
    unverified = record_of(sqlite_url, decision["decision_id"])["evidence"]["artifacts_unverified"]
    assert unverified["reason"] == "time_budget" and unverified["timeout_s"] == 0.000001


def test_a_store_with_nothing_to_serve_is_int003(mlflow_server: str, sqlite_url: str) -> None:
    ref = trained(mlflow_server)
    name, version = ref.removeprefix("mlflow:models:/").split("/")
    source = MlflowClient(mlflow_server).get_model_version(name, version).source
    location = MlflowClient(mlflow_server).get_logged_model(source.split("/")[1]).artifact_location
    for f in Path(location.removeprefix("file://")).rglob("*"):
        if f.is_file():
            f.unlink()  # the store has nothing left to serve
    code, out = check(mlflow_server, sqlite_url, ref, "production")
    decision = json.loads(out)
    assert code == 1 and [r["id"] for r in decision["reasons"]] == ["INT-003"]
    unverified = record_of(sqlite_url, decision["decision_id"])["evidence"]["artifacts_unverified"]
    assert unverified["reason"] == "store" and "no files" in unverified["detail"]


def test_files_stream_from_the_proxied_store_and_a_replaced_one_is_int002(
    proxied: MlflowServer, sqlite_url: str, tmp_path: Path
) -> None:
    ref = trained(proxied.url)
    code, out = check(proxied.url, sqlite_url, ref, "production")
    decision = json.loads(out)
    assert code == 0, decision["reasons"]
    artifacts = record_of(sqlite_url, decision["decision_id"])["evidence"]["artifacts"]
    name, version = ref.removeprefix("mlflow:models:/").split("/")
    source = MlflowClient(proxied.url).get_model_version(name, version).source
    local = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=source, dst_path=str(tmp_path / "dl"), tracking_uri=proxied.url
        )
    )
    assert artifacts["digest"] == manifest_of(local).digest  # what `attest verify --artifact` computes
    assert not list(Path("/tmp").glob("policygate-artifacts-*"))  # nothing written to disk

    stored = _stored(proxied, source)
    weights = next(f for f in stored.rglob("*") if f.name == "model.skops")
    data = weights.read_bytes()
    weights.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size, other bytes
    code, out = check(proxied.url, sqlite_url, ref, "production")
    after = json.loads(out)
    assert code == 1 and [r["id"] for r in after["reasons"]] == ["INT-002"]


def _stored(server: MlflowServer, source: str) -> Path:
    """The proxied store's directory of a LoggedModel's files (the server's --artifacts-destination)."""
    location: Any = MlflowClient(server.url).get_logged_model(source.split("/")[1]).artifact_location
    relative = str(location).removeprefix("mlflow-artifacts:/")
    path = server.data_dir / "artifacts" / relative
    assert path.is_dir(), location
    return path
