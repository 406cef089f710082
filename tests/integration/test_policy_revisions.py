"""Policy content by revision: each revision that decides is kept in the log; `policy show --revision`
and GET /v1/policy/revisions/{rev} return its files, which recompute to it after the policy on disk
has changed; an altered copy is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from policygate.api.app import create_app
from policygate.cli import app
from policygate.config import Settings
from policygate.decisions.log import DecisionLog
from policygate.policy.files import revision_of_dir
from policygate.policy.revisions import record_id
from tests.support.checkout import opa_binary, policy_copy

runner = CliRunner()


def evaluate(db: str, evidence: Path) -> dict[str, Any]:
    result = runner.invoke(app, ["evaluate", str(evidence), "--db", db, "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    decision: dict[str, Any] = json.loads(result.stdout)
    return decision


@pytest.fixture
def history(
    tmp_path: Path, sqlite_url: str, compliant: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """Two decisions: one on the policy as it was, one after a module changed on disk."""
    policy = policy_copy(tmp_path)
    monkeypatch.setenv("POLICYGATE_POLICY_DIR", str(policy))
    monkeypatch.setenv("POLICYGATE_OPA_BIN", opa_binary())
    evidence = tmp_path / "evidence.json"
    evidence.write_text(json.dumps(compliant))
    module = (policy / "policygate" / "approval.rego").read_text()
    first = evaluate(sqlite_url, evidence)
    (policy / "policygate" / "approval.rego").write_text(module + "\n# changed after the release\n")
    second = evaluate(sqlite_url, evidence)
    assert first["policy_revision"] != second["policy_revision"]
    return {"policy": policy, "first": first, "second": second, "module": module}


def test_policy_show_returns_the_files_that_decided(
    history: dict[str, Any], sqlite_url: str, tmp_path: Path
) -> None:
    old = history["first"]["policy_revision"]
    out = tmp_path / "as-released"
    result = runner.invoke(app, ["policy", "show", "--revision", old, "--out", str(out), "--db", sqlite_url])
    assert result.exit_code == 0, result.output
    assert revision_of_dir(out) == old  # recomputed by the load's own formula, from the files alone
    assert (out / "policygate" / "approval.rego").read_text() == history["module"]
    assert json.loads((out / "data.json").read_text()) == json.loads(
        (history["policy"] / "data.json").read_text()
    )
    assert not list(out.rglob("*_test.rego"))  # tests do not decide
    listed = runner.invoke(app, ["policy", "show", "--revision", old, "--db", sqlite_url])
    assert listed.exit_code == 0 and "policygate/approval.rego" in listed.stdout
    as_json = json.loads(
        runner.invoke(app, ["policy", "show", "--revision", old, "-f", "json", "--db", sqlite_url]).stdout
    )
    assert as_json["files"]["policygate/approval.rego"] == history["module"]
    newer = tmp_path / "now"
    new = history["second"]["policy_revision"]
    assert (
        runner.invoke(
            app, ["policy", "show", "--revision", new, "--out", str(newer), "--db", sqlite_url]
        ).exit_code
        == 0
    )
    assert revision_of_dir(newer) == new == revision_of_dir(history["policy"])


def test_each_revision_is_kept_once(history: dict[str, Any], sqlite_url: str, tmp_path: Path) -> None:
    evidence = tmp_path / "evidence.json"
    evaluate(sqlite_url, evidence)  # the same revision again
    log = DecisionLog(sqlite_url)
    kept = log.query(kind="policy", limit=10)
    assert log.verify().ok
    log.close()
    assert sorted(r["policy"]["revision"] for r in kept) == sorted(
        {history["first"]["policy_revision"], history["second"]["policy_revision"]}
    )


def test_the_api_returns_them_with_a_read_route(history: dict[str, Any], sqlite_url: str) -> None:
    settings = Settings(db_url=sqlite_url, policy_dir=history["policy"], opa_bin=opa_binary())
    old = history["first"]["policy_revision"]
    with TestClient(create_app(settings)) as client:
        answer = client.get(f"/v1/policy/revisions/{old}").json()
        assert answer["revision"] == old
        assert answer["files"]["policygate/approval.rego"] == history["module"]
        unknown = client.get("/v1/policy/revisions/sha256:" + "0" * 64)
        assert unknown.status_code == 404 and "no policy content kept" in unknown.json()["message"]
        assert client.get("/v1/policy/revisions/sha256:xyz").status_code == 422


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ("max_approval_age_days", "max_approval_age_dayz", "recompute to"),  # a changed byte
        ('"policygate/approval.rego"', '"../../approval.rego"', "outside it"),  # names do not count in it
    ],
)
def test_an_altered_copy_is_refused(
    history: dict[str, Any], sqlite_url: str, tmp_path: Path, old: str, new: str, named: str
) -> None:
    revision = history["first"]["policy_revision"]
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE decision_log SET body = replace(body, :old, :new) WHERE decision_id = :id"),
            {"old": old, "new": new, "id": record_id(revision)},
        )
    engine.dispose()
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["policy", "show", "--revision", revision, "--out", str(out), "--db", sqlite_url]
    )
    assert result.exit_code == 1 and named in result.stderr
    assert not out.exists()
    verify = runner.invoke(app, ["log", "verify", "--db", sqlite_url])
    assert verify.exit_code == 1  # and the chain names it too


def test_bad_input_is_exit_2(sqlite_url: str, tmp_path: Path) -> None:
    bad = runner.invoke(app, ["policy", "show", "--revision", "abc", "--db", sqlite_url])
    assert bad.exit_code == 2 and "not a policy revision" in bad.stderr
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    args = ["policy", "show", "--revision", "sha256:" + "0" * 64, "--out", str(full), "--db", sqlite_url]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "not an empty directory" in refused.stderr


def test_a_decision_over_http_keeps_its_revision(client: TestClient, compliant: dict[str, Any]) -> None:
    decision = client.post("/v1/evaluate", json={"evidence": compliant}).json()
    revision = decision["policy_revision"]
    answer = client.get(f"/v1/policy/revisions/{revision}")
    assert answer.status_code == 200, answer.text
    assert "policygate/main.rego" in answer.json()["files"]
