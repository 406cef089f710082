"""`policygate log pack`: one model version's records of every kind, its evidence and policy, a signed
checkpoint and the chain segment proving each record in it; `log pack verify` checks it offline (no
database, no network) and names a changed byte, a removed record or a record from another log."""

from __future__ import annotations

import copy
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from policygate.audit.pack import chain_file
from policygate.cli import app
from policygate.decisions.checkpoint import create_key
from tests.support.checkout import opa_binary, policy_copy

runner = CliRunner()
MODEL = "mlflow:models:/fraud-detector/7"
OTHER = "mlflow:models:/churn/3"


def evaluate(db: str, evidence: Path) -> dict[str, Any]:
    result = runner.invoke(app, ["evaluate", str(evidence), "--db", db, "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    decision: dict[str, Any] = json.loads(result.stdout)
    return decision


def decide_in(tmp: Path, db: str, compliant: dict[str, Any], ticket: str) -> None:
    """Two decisions about MODEL (the second after the policy changed) with one about OTHER between."""
    policy = policy_copy(tmp)
    ours = tmp / "ours.json"
    ours.write_text(json.dumps({**compliant, "request": {**compliant["request"], "ticket": ticket}}))
    theirs = copy.deepcopy(compliant)
    theirs["subject"].update(name="churn", version="3", ref=OTHER)
    other = tmp / "other.json"
    other.write_text(json.dumps(theirs))
    evaluate(db, ours)
    evaluate(db, other)
    module = policy / "policygate" / "approval.rego"
    module.write_text(module.read_text() + "\n# changed after the release\n")
    evaluate(db, ours)


@pytest.fixture
def world(
    tmp_path: Path, sqlite_url: str, compliant: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    monkeypatch.setenv("POLICYGATE_POLICY_DIR", str(tmp_path / "rego"))
    monkeypatch.setenv("POLICYGATE_OPA_BIN", opa_binary())
    key, pub = create_key(tmp_path / "checkpoint.key")
    decide_in(tmp_path, sqlite_url, compliant, "CHG-1")
    monkeypatch.setenv("POLICYGATE_CHECKPOINT_KEY", str(key))
    out = tmp_path / "pack.tar.gz"
    result = runner.invoke(app, ["log", "pack", MODEL, "--out", str(out), "--db", sqlite_url])
    assert result.exit_code == 0, result.output
    return {"pack": out, "pub": pub, "key": key, "db": sqlite_url, "tmp": tmp_path}


def members(pack: Path) -> dict[str, bytes]:
    with tarfile.open(pack, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def repack(files: dict[str, bytes], out: Path) -> Path:
    with tarfile.open(out, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def verify(pack: Path, pub: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    # offline: no database (a URL that cannot open) and no policy, OPA or checkpoint settings
    for name in ("POLICYGATE_POLICY_DIR", "POLICYGATE_CHECKPOINT_KEY", "POLICYGATE_OPA_BIN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POLICYGATE_DB_URL", "postgresql://nobody@127.0.0.1:1/none")
    return runner.invoke(app, ["log", "pack", "verify", str(pack), "--key", str(pub)])


def about_model(files: dict[str, bytes]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads(files["manifest.json"])["records"]
    return records


def test_a_pack_verifies_offline(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    files = members(world["pack"])
    records = about_model(files)
    assert [r["kind"] for r in records] == ["decision", "decision"]
    manifest = json.loads(files["manifest.json"])
    assert len(manifest["policy_records"]) == 2  # each revision that decided, its content kept
    assert any(n.startswith("evidence/") for n in files) and "SUMMARY.md" in files
    assert "CHG-1" in files["SUMMARY.md"].decode()
    assert "manifest.sig" in files
    result = verify(world["pack"], world["pub"], monkeypatch)
    assert result.exit_code == 0, result.output
    assert f"2 record(s) about {MODEL} proven" in result.output


def test_one_changed_byte_is_named(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    files = members(world["pack"])
    name = next(n for n in files if n.startswith("evidence/"))
    files[name] = files[name].replace(b"alice", b"alicf", 1)
    result = verify(repack(files, world["tmp"] / "changed.tar.gz"), world["pub"], monkeypatch)
    assert result.exit_code == 1, result.output
    assert f"{name}: changed" in result.output


def test_a_changed_record_is_named_even_with_the_manifest_rewritten(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    files = members(world["pack"])
    seq = about_model(files)[-1]["seq"]
    files[chain_file(seq)] = files[chain_file(seq)].replace(b"alice", b"alicf", 1)
    manifest = json.loads(files["manifest.json"])
    import hashlib

    manifest["files"][chain_file(seq)] = hashlib.sha256(files[chain_file(seq)]).hexdigest()
    files["manifest.json"] = json.dumps(manifest).encode()
    del files["manifest.sig"]
    result = verify(repack(files, world["tmp"] / "rewritten.tar.gz"), world["pub"], monkeypatch)
    assert result.exit_code == 1, result.output
    assert f"record {seq} (decision" in result.output and "was changed" in result.output


def test_a_removed_record_is_named(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    files = members(world["pack"])
    seq = about_model(files)[0]["seq"]
    del files[chain_file(seq)]
    result = verify(repack(files, world["tmp"] / "removed.tar.gz"), world["pub"], monkeypatch)
    assert result.exit_code == 1, result.output
    assert f"record {seq} ({chain_file(seq)}) is missing" in result.output


def test_a_record_from_another_log_is_named(
    world: dict[str, Any], compliant: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The same decisions made in a second log: its record, spliced in at the same place, is refused."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    db = f"sqlite:///{elsewhere / 'other.db'}"
    monkeypatch.setenv("POLICYGATE_POLICY_DIR", str(elsewhere / "rego"))
    monkeypatch.delenv("POLICYGATE_CHECKPOINT_KEY")
    decide_in(elsewhere, db, compliant, "CHG-1")
    monkeypatch.setenv("POLICYGATE_CHECKPOINT_KEY", str(world["key"]))  # the same key signs both logs
    foreign = elsewhere / "foreign.tar.gz"
    result = runner.invoke(app, ["log", "pack", MODEL, "--out", str(foreign), "--db", db])
    assert result.exit_code == 0, result.output
    ours, theirs = members(world["pack"]), members(foreign)
    seq = about_model(ours)[-1]["seq"]
    assert about_model(theirs)[-1]["seq"] == seq
    ours[chain_file(seq)] = theirs[chain_file(seq)]
    spliced = verify(repack(ours, tmp_path / "spliced.tar.gz"), world["pub"], monkeypatch)
    assert spliced.exit_code == 1, spliced.output
    assert f"{chain_file(seq)}: changed" in spliced.output
    assert f"record {seq} (decision" in spliced.output
    # the whole foreign pack verifies on its own with the same key: only the splice is refused
    assert verify(foreign, world["pub"], monkeypatch).exit_code == 0


def test_without_a_checkpoint_nothing_is_packed(
    tmp_path: Path, sqlite_url: str, compliant: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLICYGATE_POLICY_DIR", str(tmp_path / "rego"))
    monkeypatch.setenv("POLICYGATE_OPA_BIN", opa_binary())
    monkeypatch.delenv("POLICYGATE_CHECKPOINT_KEY", raising=False)
    monkeypatch.delenv("POLICYGATE_CHECKPOINT_DIR", raising=False)
    decide_in(tmp_path, sqlite_url, compliant, "CHG-2")
    out = tmp_path / "none.tar.gz"
    result = runner.invoke(app, ["log", "pack", MODEL, "--out", str(out), "--db", sqlite_url])
    assert result.exit_code == 2 and "no checkpoint" in result.output
    assert not out.exists()


def test_the_api_serves_the_same_pack(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from policygate.api.app import create_app
    from policygate.audit.pack_verify import verify as verify_pack
    from policygate.config import Settings
    from policygate.decisions.checkpoint import load_public

    settings = Settings(
        db_url=world["db"],
        policy_dir=world["tmp"] / "rego",
        opa_bin=opa_binary(),
        checkpoint_key=world["key"],
    )
    with TestClient(create_app(settings)) as client:
        answer = client.get(f"/v1/models/{MODEL}/pack")
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/gzip"
        verdict = verify_pack(answer.content, load_public(world["pub"]))
        assert verdict.ok and verdict.records == 2, verdict.problems
        assert client.get("/v1/models/mlflow:models:/nobody/1/pack").status_code == 404
        assert client.get("/v1/models/not-a-ref/pack").status_code == 422


def test_the_waiver_that_applied_is_in_the_pack(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A waiver names the model or a glob; the pack holds its record because a decision applied it."""
    from tests.support.checkout import EXAMPLES

    granted = runner.invoke(
        app,
        [
            "waiver", "add", "--rule", "APR-002", "--model", "mlflow:models:/fraud-*/*",
            "--reason", "owner approval accepted", "--approved-by", "ciso@example.com", "--expires", "30d",
            "--db", world["db"],
        ],
    )  # fmt: skip
    assert granted.exit_code == 0, granted.output
    waived = evaluate(world["db"], EXAMPLES / "APR-002.json")
    assert waived["outcome"] == "allow" and waived["warnings"][0]["waiver"]
    out = world["tmp"] / "waived.tar.gz"
    result = runner.invoke(app, ["log", "pack", MODEL, "--out", str(out), "--db", world["db"]])
    assert result.exit_code == 0, result.output
    kinds = [r["kind"] for r in about_model(members(out))]
    assert kinds == ["decision", "decision", "waiver", "decision"], kinds
    result = verify(out, world["pub"], monkeypatch)
    assert result.exit_code == 0 and "3 record(s)" not in result.output, result.output
    assert f"4 record(s) about {MODEL} proven" in result.output


@pytest.mark.parametrize("content", [b"not a pack", b""])
def test_what_is_not_a_pack_never_verifies(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, content: bytes
) -> None:
    bogus = world["tmp"] / "bogus.tar.gz"
    bogus.write_bytes(content)
    result = verify(bogus, world["pub"], monkeypatch)
    assert result.exit_code == 1 and "not a readable tar.gz" in result.output, result.output
    files = members(world["pack"])
    files["manifest.json"] = b'{"format": "policygate-pack/v1", "files": [], "segment": {"first": "x"}}'
    result = verify(repack(files, world["tmp"] / "malformed.tar.gz"), world["pub"], monkeypatch)
    assert result.exit_code == 1 and "PACK DOES NOT VERIFY" in result.output, result.output


def test_without_the_key_the_newest_checkpoint_of_the_directory_proves_it(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = world["tmp"] / "checkpoints"
    directory.mkdir()
    signed = runner.invoke(app, ["log", "checkpoint", "--key", str(world["key"]), "--db", world["db"]])
    assert signed.exit_code == 0, signed.output
    (directory / "latest.txt").write_text(signed.stdout)
    monkeypatch.delenv("POLICYGATE_CHECKPOINT_KEY")
    monkeypatch.setenv("POLICYGATE_CHECKPOINT_DIR", str(directory))
    out = world["tmp"] / "from-dir.tar.gz"
    result = runner.invoke(app, ["log", "pack", MODEL, "--out", str(out), "--db", world["db"]])
    assert result.exit_code == 0, result.output
    files = members(out)
    assert "manifest.sig" not in files and not any(n.startswith("attestations/") for n in files)
    assert files["checkpoint.txt"].decode() == signed.stdout
    result = verify(out, world["pub"], monkeypatch)
    assert result.exit_code == 0, result.output
    assert "the manifest is not signed" in result.output
