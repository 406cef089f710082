"""The files behind a model version: hashed into the evidence from a real MLflow server, INT-002 when they
change after an allow, and the signed attestation a deploy step checks offline."""

from __future__ import annotations

import base64
import json
import os
import socket
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import mlflow
import pytest
import requests
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from policygate.api.app import create_app
from policygate.cli import app
from policygate.config import Settings
from policygate.demo.seed import ModelSpec, register
from policygate.integrity.manifest import manifest_of
from tests.support.checkout import REGO, opa_binary
from tests.support.keys import pem_pair
from tests.support.processes import record_of
from tests.support.served import Served
from tests.support.tokens import bearer, token

runner = CliRunner()
WEIGHTS = "model.skops"  # what mlflow.sklearn.log_model writes the fitted model to


def check(mlflow_uri: str, db: str, ref: str, *extra: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(
        app, ["check", ref, "-t", "production", "--mlflow-uri", mlflow_uri, "--db", db, "-f", "json", *extra]
    )
    assert result.exit_code in (0, 1, 2), result.output
    return result.exit_code, json.loads(result.stdout)


def evidence_of(db: str, decision_id: str) -> dict[str, Any]:
    evidence: dict[str, Any] = record_of(db, decision_id)["evidence"]
    return evidence


@pytest.fixture
def trained(mlflow_server: str) -> tuple[str, str, str]:
    """A model version with real files (a LoggedModel from scikit-learn): (name, version, source)."""
    name = f"signed-{uuid.uuid4().hex[:8]}"
    version = register(mlflow_server, ModelSpec(name), train=True)
    source = MlflowClient(mlflow_server).get_model_version(name, version).source
    assert source.startswith("models:/m-")
    return name, version, source


def local_files(mlflow_uri: str, source: str, into: Path) -> Path:
    return Path(
        mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(into), tracking_uri=mlflow_uri)
    )


def stored_files(mlflow_uri: str, source: str) -> Path:
    """Where the tracking server keeps the LoggedModel's files (a local artifact root in the tests)."""
    model_id = source.removeprefix("models:/").split("/", 1)[0]
    location = MlflowClient(mlflow_uri).get_logged_model(model_id).artifact_location
    path = Path(urlsplit(location).path if location.startswith("file:") else location)
    assert path.is_dir(), location
    return path


def test_the_files_are_in_the_evidence_and_a_change_after_the_allow_is_denied(
    mlflow_server: str, sqlite_url: str, trained: tuple[str, str, str], tmp_path: Path
) -> None:
    name, version, source = trained
    code, decision = check(mlflow_server, sqlite_url, f"mlflow:models:/{name}/{version}")
    assert code == 0, decision["reasons"]
    artifacts = evidence_of(sqlite_url, decision["decision_id"])["artifacts"]
    files = manifest_of(local_files(mlflow_server, source, tmp_path / "dl"))
    assert artifacts["digest"] == files.digest and artifacts["size"] == files.size
    assert {f["path"] for f in artifacts["files"]} >= {"MLmodel", WEIGHTS}
    assert artifacts["signature"]["status"] == "absent" and artifacts["recorded"] == []

    weights = stored_files(mlflow_server, source) / WEIGHTS
    weights.write_bytes(weights.read_bytes() + b"\x00")  # someone replaces the approved weights
    code, after = check(mlflow_server, sqlite_url, f"mlflow:models:/{name}/{version}")
    assert code == 1 and [r["id"] for r in after["reasons"]] == ["INT-002"]
    assert decision["decision_id"] in after["reasons"][0]["message"]
    # the denied decision does not make the changed files the new baseline
    code, again = check(mlflow_server, sqlite_url, f"mlflow:models:/{name}/{version}")
    assert code == 1 and [r["id"] for r in again["reasons"]] == ["INT-002"]


def test_an_approval_recorded_through_policygate_keeps_the_files_it_approved(
    mlflow_server: str, sqlite_url: str, trained: tuple[str, str, str], tmp_path: Path
) -> None:
    name, version, source = trained
    ref = f"mlflow:models:/{name}/{version}"
    carol, dave = token(sqlite_url, "carol@corp", "approve"), token(sqlite_url, "dave@corp", "approve")
    settings = Settings(db_url=sqlite_url, policy_dir=REGO, opa_bin=opa_binary(), mlflow_uri=mlflow_server)
    with TestClient(create_app(settings)) as api:
        rejected = api.post(
            "/v1/approvals",
            json={"model": ref, "stage": "staging", "decision": "rejected"},
            headers=bearer(dave),
        )
        assert rejected.status_code == 201 and rejected.json()["approval"]["artifacts_digest"] is None
        answer = api.post("/v1/approvals", json={"model": ref, "stage": "production"}, headers=bearer(carol))
    assert answer.status_code == 201, answer.text
    approval = answer.json()["approval"]
    assert (
        approval["artifacts_digest"]
        == manifest_of(local_files(mlflow_server, source, tmp_path / "dl")).digest
    )

    weights = stored_files(mlflow_server, source) / WEIGHTS
    weights.write_bytes(weights.read_bytes() + b"\x00")  # replaced after approval, before any decision
    code, decision = check(mlflow_server, sqlite_url, ref)
    assert code == 1 and "INT-002" in [r["id"] for r in decision["reasons"]]
    message = next(r["message"] for r in decision["reasons"] if r["id"] == "INT-002")
    assert f'after the approval "{approval["id"]}"' in message
    recorded = evidence_of(sqlite_url, decision["decision_id"])["artifacts"]["recorded"]
    assert recorded == [
        {
            "digest": approval["artifacts_digest"],
            "decision_id": approval["id"],
            "kind": "approval",
            "recorded_at": recorded[0]["recorded_at"],
        }
    ]


def test_files_over_the_budget_are_a_named_gap(
    mlflow_server: str, sqlite_url: str, trained: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, version, _ = trained
    monkeypatch.setenv("POLICYGATE_ARTIFACTS__MAX_BYTES", "10")
    _, decision = check(mlflow_server, sqlite_url, f"mlflow:models:/{name}/{version}")
    evidence = evidence_of(sqlite_url, decision["decision_id"])
    assert evidence["artifacts"] is None and "artifacts" in evidence["collection"]["gaps"]


def attest(db: str, decision_id: str, key: Path, out: Path) -> Any:
    return runner.invoke(app, ["attest", decision_id, "--key", str(key), "--out", str(out), "--db", db])


def verify(envelope: Path, pub: Path, *args: str) -> Any:
    return runner.invoke(app, ["attest", "verify", str(envelope), "--key", str(pub), *args])


def test_an_attestation_round_trip_and_every_way_it_refuses(
    mlflow_server: str, sqlite_url: str, trained: tuple[str, str, str], tmp_path: Path
) -> None:
    name, version, source = trained
    _, decision = check(mlflow_server, sqlite_url, f"mlflow:models:/{name}/{version}")
    key, other = tmp_path / "policygate.key", tmp_path / "other.key"
    for k in (key, other):
        assert runner.invoke(app, ["key", "create", "--out", str(k)]).exit_code == 0
    pub = Path(f"{key}.pub")
    envelope = tmp_path / "attestation.json"
    made = attest(sqlite_url, decision["decision_id"], key, envelope)
    assert made.exit_code == 0, made.output
    files = local_files(mlflow_server, source, tmp_path / "deploy")

    ok = verify(envelope, pub, "--target", "production", "--artifact", str(files))
    assert ok.exit_code == 0 and ok.stdout.startswith(f"OK: mlflow:models:/{name}/{version} -> production"), (
        ok.output
    )
    digest = evidence_of(sqlite_url, decision["decision_id"])["artifacts"]["digest"]
    assert verify(envelope, pub, "--target", "production", "--digest", digest).exit_code == 0
    statement = json.loads(base64.b64decode(json.loads(envelope.read_text())["payload"]))
    assert statement["predicate"]["decision"]["decision_id"] == decision["decision_id"]
    assert (
        statement["predicate"]["log"]["seq"] >= 1
        and statement["subject"][0]["digest"]["sha256"] == digest[7:]
    )

    wrong_key = verify(envelope, Path(f"{other}.pub"), "--target", "production", "--artifact", str(files))
    assert wrong_key.exit_code == 1 and "signature" in wrong_key.output
    other_target = verify(envelope, pub, "--target", "staging", "--artifact", str(files))
    assert other_target.exit_code == 1 and "target" in other_target.output
    tampered = tmp_path / "tampered.json"
    doc = json.loads(envelope.read_text())
    payload = json.loads(base64.b64decode(doc["payload"]))
    payload["predicate"]["decision"]["target"]["stage"] = "staging"
    doc["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    tampered.write_text(json.dumps(doc))
    assert verify(tampered, pub, "--target", "staging", "--artifact", str(files)).exit_code == 1
    (files / WEIGHTS).write_bytes(b"not the approved weights")
    changed = verify(envelope, pub, "--target", "production", "--artifact", str(files))
    assert changed.exit_code == 1 and f"changed: {WEIGHTS}" in changed.output
    assert (
        verify(envelope, pub, "--target", "production", "--artifact", str(tmp_path / "nowhere")).exit_code
        == 2
    )
    assert verify(tmp_path / "missing.json", pub, "--target", "production", "--digest", digest).exit_code == 2


def test_the_api_serves_attestations_of_collected_decisions_only(
    mlflow_server: str, sqlite_url: str, trained: tuple[str, str, str], tmp_path: Path
) -> None:
    name, version, _ = trained
    _, decision = check(mlflow_server, sqlite_url, f"mlflow:models:/{name}/{version}")
    key = tmp_path / "k"
    assert runner.invoke(app, ["key", "create", "--out", str(key)]).exit_code == 0
    base = {"db_url": sqlite_url, "policy_dir": REGO, "opa_bin": opa_binary(), "mlflow_uri": mlflow_server}
    with TestClient(create_app(Settings(**base))) as api:
        assert api.get(f"/v1/decisions/{decision['decision_id']}/attestation").status_code == 503
    with TestClient(create_app(Settings(**base, checkpoint_key=key))) as api:
        answer = api.get(f"/v1/decisions/{decision['decision_id']}/attestation")
        assert answer.status_code == 200 and answer.json()["payloadType"] == "application/vnd.in-toto+json"
        envelope = tmp_path / "a.json"
        envelope.write_text(answer.text)
        digest = evidence_of(sqlite_url, decision["decision_id"])["artifacts"]["digest"]
        assert (
            verify(envelope, Path(f"{key}.pub"), "--target", "production", "--digest", digest).exit_code == 0
        )
        evidence = json.loads(
            (Path(__file__).parents[2] / "examples" / "evidence" / "compliant.json").read_text()
        )
        what_if = api.post("/v1/evaluate", json={"evidence": evidence}).json()
        refused = api.get(f"/v1/decisions/{what_if['decision_id']}/attestation")
        assert refused.status_code == 409 and "what-if" in refused.json()["message"]
        assert api.get(f"/v1/decisions/{uuid.uuid4()}/attestation").status_code == 404


def test_an_attestation_dies_with_its_allow_withdrawn_or_superseded(
    mlflow_server: str, sqlite_url: str, tmp_path: Path
) -> None:
    """Approval -> allow D1 -> the approval withdrawn: D1 no longer stands (409 naming why, `attest`
    refuses, `attest verify --server` refuses an envelope made before); decided again -> deny: superseded."""
    name = f"approved-{uuid.uuid4().hex[:8]}"
    version = register(mlflow_server, ModelSpec(name, approvals=[]), train=True)
    ref = f"mlflow:models:/{name}/{version}"
    source = MlflowClient(mlflow_server).get_model_version(name, version).source
    files = local_files(mlflow_server, source, tmp_path / "deploy")
    key = tmp_path / "policygate.key"
    assert runner.invoke(app, ["key", "create", "--out", str(key)]).exit_code == 0
    pub = Path(f"{key}.pub")
    carol, ci = token(sqlite_url, "carol@corp", "approve"), token(sqlite_url, "ci", "decide,read")
    env = {"POLICYGATE_DB_URL": sqlite_url, "MLFLOW_TRACKING_URI": mlflow_server,
           "POLICYGATE_CHECKPOINT_KEY": str(key)}  # fmt: skip
    decide = {"model": ref, "target": {"stage": "production"}}
    with Served(env) as server:
        base, as_ci = server.base, bearer(ci)
        approved = requests.post(
            f"{base}/v1/approvals",
            json={"model": ref, "stage": "production"},
            headers=bearer(carol),
            timeout=30,
        )
        assert approved.status_code == 201, approved.text
        d1 = requests.post(f"{base}/v1/decisions", json=decide, headers=as_ci, timeout=60).json()
        assert d1["outcome"] == "allow", d1["reasons"]
        answer = requests.get(
            f"{base}/v1/decisions/{d1['decision_id']}/attestation", headers=as_ci, timeout=30
        )
        assert answer.status_code == 200, answer.text
        envelope = tmp_path / "d1.json"
        envelope.write_text(answer.text)
        args = ("--target", "production", "--artifact", str(files), "--server", base)
        stands = runner.invoke(
            app, ["attest", "verify", str(envelope), "--key", str(pub), *args], env={"POLICYGATE_TOKEN": ci}
        )
        assert stands.exit_code == 0, stands.output

        approval_id = approved.json()["approval"]["id"]
        withdrawn = requests.delete(f"{base}/v1/approvals/{approval_id}", headers=bearer(carol), timeout=30)
        assert withdrawn.status_code == 200, withdrawn.text
        refused = requests.get(
            f"{base}/v1/decisions/{d1['decision_id']}/attestation", headers=as_ci, timeout=30
        )
        assert refused.status_code == 409 and "withdrawn" in refused.json()["message"], refused.text
        assert approval_id in refused.json()["message"]
        offline = verify(envelope, pub, "--target", "production", "--artifact", str(files))
        assert offline.exit_code == 0  # offline, the envelope alone cannot know: --server asks
        asked = runner.invoke(
            app, ["attest", "verify", str(envelope), "--key", str(pub), *args], env={"POLICYGATE_TOKEN": ci}
        )
        assert asked.exit_code == 1 and "withdrawn" in asked.output, asked.output

        d2 = requests.post(f"{base}/v1/decisions", json=decide, headers=as_ci, timeout=60).json()
        assert d2["outcome"] == "deny"
        refused = requests.get(
            f"{base}/v1/decisions/{d1['decision_id']}/attestation", headers=as_ci, timeout=30
        )
        assert refused.status_code == 409 and "superseded" in refused.json()["message"]
        assert d2["decision_id"] in refused.json()["message"]
        standing = requests.get(
            f"{base}/v1/decisions/{d1['decision_id']}/standing", headers=as_ci, timeout=30
        )
        assert standing.json()["standing"] is False and "superseded" in standing.json()["reason"]
    made = attest(sqlite_url, d1["decision_id"], key, tmp_path / "again.json")
    assert made.exit_code == 2 and "superseded" in made.output and not (tmp_path / "again.json").exists()


def test_an_expired_attestation_is_refused_and_at_audits_its_period(
    mlflow_server: str, sqlite_url: str, trained: tuple[str, str, str], tmp_path: Path
) -> None:
    name, version, _ = trained
    _, decision = check(mlflow_server, sqlite_url, f"mlflow:models:/{name}/{version}")
    key = tmp_path / "policygate.key"
    assert runner.invoke(app, ["key", "create", "--out", str(key)]).exit_code == 0
    envelope, pub = tmp_path / "a.json", Path(f"{key}.pub")
    made = runner.invoke(
        app,
        ["attest", decision["decision_id"], "--key", str(key), "--out", str(envelope), "--db", sqlite_url],
        env={"POLICYGATE_ATTESTATION_TTL_S": "60"},
    )
    assert made.exit_code == 0, made.output
    predicate = json.loads(base64.b64decode(json.loads(envelope.read_text())["payload"]))["predicate"]
    issued, until = (datetime.fromisoformat(predicate[k]) for k in ("issued_at", "valid_until"))
    assert (until - issued).total_seconds() == 60
    digest = evidence_of(sqlite_url, decision["decision_id"])["artifacts"]["digest"]
    args = ("--target", "production", "--digest", digest)
    assert verify(envelope, pub, *args).exit_code == 0
    later = verify(envelope, pub, *args, "--at", (until + timedelta(seconds=1)).isoformat())
    assert later.exit_code == 1 and "expired" in later.output
    inside = verify(envelope, pub, *args, "--at", (issued + timedelta(seconds=30)).isoformat())
    assert inside.exit_code == 0, inside.output
    before = verify(envelope, pub, *args, "--at", (issued - timedelta(hours=1)).isoformat())
    assert before.exit_code == 1 and "not yet valid" in before.output
    assert verify(envelope, pub, *args, "--at", "yesterday").exit_code == 2


def test_attest_verify_ignores_no_name_and_refuses_special_files_within_seconds(
    mlflow_server: str, sqlite_url: str, trained: tuple[str, str, str], tmp_path: Path
) -> None:
    """model.sig that is no signature, registered_model_meta, any other name: added files (exit 1); a
    FIFO, a socket: refused by name (exit 2) at once, and a directory that cannot be read in time is 2."""
    name, version, source = trained
    _, decision = check(mlflow_server, sqlite_url, f"mlflow:models:/{name}/{version}")
    key = tmp_path / "policygate.key"
    assert runner.invoke(app, ["key", "create", "--out", str(key)]).exit_code == 0
    envelope, pub = tmp_path / "a.json", Path(f"{key}.pub")
    assert attest(sqlite_url, decision["decision_id"], key, envelope).exit_code == 0
    files = local_files(mlflow_server, source, tmp_path / "deploy")
    args = ("--target", "production", "--artifact", str(files))
    assert verify(envelope, pub, *args).exit_code == 0
    signer_pub = ec_key(tmp_path, "signer")[1]
    assert (files / "registered_model_meta").exists()  # MLflow's own download note: it is just that
    (files / "registered_model_meta").unlink()
    junks = {
        "model.sig": "anything at all",
        "registered_model_meta": "model_name: another\nmodel_version: 3\n",  # not this model's note
        "notes.txt": "anything at all",
    }
    for junk, content in junks.items():
        (files / junk).write_text(content)
        added = verify(envelope, pub, *args)
        assert added.exit_code == 1 and f"added:   {junk}" in added.output, added.output
        if junk == "model.sig":  # with the signer's key it must verify as a signature: it does not
            invalid = verify(envelope, pub, *args, "--signing-key", str(signer_pub))
            assert invalid.exit_code == 1 and "added:   model.sig" in invalid.output
        (files / junk).unlink()

    os.mkfifo(files / "pipe")
    started = time.monotonic()
    fifo = verify(envelope, pub, *args)
    assert fifo.exit_code == 2 and "pipe is a FIFO: refused" in fifo.output, fifo.output
    assert time.monotonic() - started < 10
    (files / "pipe").unlink()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(files / "sock"))
        refused = verify(envelope, pub, *args)
        assert refused.exit_code == 2 and "sock is a socket: refused" in refused.output
    (files / "sock").unlink()
    assert verify(envelope, pub, *args).exit_code == 0  # the same files, nothing special left: they pass


def test_a_fifo_swapped_in_after_the_check_still_meets_the_deadline(tmp_path: Path) -> None:
    """The deadline holds even for a FIFO that slips past the special-file check: the read is given up."""
    from policygate.integrity.deployed import DeadlineExceeded, within
    from policygate.integrity.manifest import manifest_of

    (tmp_path / "model").mkdir()
    os.mkfifo(tmp_path / "model" / "weights")
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        within(time.monotonic() + 1, lambda: manifest_of(tmp_path / "model"))
    assert time.monotonic() - started < 3


def ec_key(directory: Path, name: str) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives.asymmetric import ec

    return pem_pair(ec.generate_private_key(ec.SECP256R1()), directory, name)


def checked_warnings(decision: dict[str, Any]) -> list[str]:
    """The warnings' rule ids, less the identity rules' "not checked: no directory" (docs/identity.md)."""
    return [w["id"] for w in decision["warnings"] if not w.get("unchecked")]


def test_a_signed_model_is_verified_and_int001_names_a_signer_not_allowed(
    mlflow_server: str,
    sqlite_url: str,
    trained: tuple[str, str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import model_signing

    from tests.support.checkout import policy_copy

    name, version, source = trained
    stored = stored_files(mlflow_server, source)
    private, public = ec_key(tmp_path, "ml-platform")
    _, stranger = ec_key(tmp_path, "stranger")
    model_signing.signing.Config().use_elliptic_key_signer(private_key=private).sign(
        stored, stored / "model.sig"
    )
    ref = f"mlflow:models:/{name}/{version}"

    monkeypatch.setenv("POLICYGATE_ARTIFACTS__SIGNING_KEYS", json.dumps({"ml-platform": str(public)}))
    code, decision = check(mlflow_server, sqlite_url, ref)
    signature = evidence_of(sqlite_url, decision["decision_id"])["artifacts"]["signature"]
    assert signature == {
        "status": "verified",
        "signer": "ml-platform",
        "method": "key",
        "certificate": None,
        "error": None,
    }
    # shipped in warn mode, no signer allowed yet: allowed, with the warning
    assert code == 0 and checked_warnings(decision) == ["INT-001"]

    allowing = policy_copy(tmp_path)
    data = json.loads((allowing / "data.json").read_text())
    data["policygate_params"]["allowed_signers"] = ["ml-platform"]
    (allowing / "data.json").write_text(json.dumps(data))
    monkeypatch.setenv("POLICYGATE_POLICY_DIR", str(allowing))
    code, decision = check(mlflow_server, sqlite_url, ref)
    assert code == 0 and checked_warnings(decision) == []

    monkeypatch.setenv("POLICYGATE_ARTIFACTS__SIGNING_KEYS", json.dumps({"stranger": str(stranger)}))
    code, decision = check(mlflow_server, sqlite_url, ref)
    signature = evidence_of(sqlite_url, decision["decision_id"])["artifacts"]["signature"]
    assert signature["status"] == "invalid" and signature["error"].startswith("stranger: ")
    assert code == 0 and checked_warnings(decision) == ["INT-001"]
