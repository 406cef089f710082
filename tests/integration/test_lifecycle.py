"""Owner reviews and retirement (issue 29, item 3; LIF-001, LIF-002): a real MLflow server, the real
OPA, a ``file:`` directory and a real ``policygate serve`` that records the events."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from policygate.api.app import create_app
from policygate.cli import app
from policygate.config import Settings
from policygate.decisions.checkpoint import create_key
from policygate.decisions.lifecycle import lifecycle_events
from policygate.decisions.log import DecisionLog
from policygate.demo.seed import ModelSpec, register
from tests.support.checkout import opa_binary, policy_copy, without_shipped_tests
from tests.support.governed import pack_members
from tests.support.served import Served
from tests.support.tokens import bearer, token

runner = CliRunner()
# medium risk: an owner review is current for 60 s under the "short" policy: long enough that the check
# right after a review sees it current on a loaded CI machine (17 s was not), short enough to wait out
SHORT_DAYS = 60 / 86400
PEOPLE = {
    "people": [
        {"id": "alice@corp", "active": True, "kind": "person", "groups": ["risk-ml"]},
        {"id": "bob@corp", "active": True, "kind": "person", "groups": ["model-risk"]},
        {"id": "mallory@corp", "active": True, "kind": "person", "groups": ["risk-ml"]},
    ]
}


def policy(tmp: Path, name: str, review_days: float | None = None) -> Path:
    """rego/ with INT-003 warning in production (the seeded versions have no files) and, if given,
    the medium tier's owner_review_days."""
    rego = without_shipped_tests(policy_copy(tmp / name), keep_helpers=False)
    data = json.loads((rego / "data.json").read_text())
    data["policygate_params"]["unverified_files"]["production"] = "warn"
    if review_days is not None:
        data["policygate_params"]["owner_review_days"]["medium"] = review_days
    (rego / "data.json").write_text(json.dumps(data))
    return rego


@pytest.fixture
def directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "directory.yaml"
    path.write_text(yaml.safe_dump(PEOPLE))
    monkeypatch.setenv("POLICYGATE_DIRECTORY", f"file:{path}")
    monkeypatch.setenv("POLICYGATE_DIRECTORY_CACHE_S", "0")
    return path


def check(mlflow_uri: str, db: str, ref: str, rego: Path) -> tuple[int, dict[str, Any]]:
    args = ["check", ref, "--target", "production", "--requested-by", "ci@corp", "--mlflow-uri", mlflow_uri]
    result = runner.invoke(
        app, [*args, "--db", db, "--format", "json"], env={"POLICYGATE_POLICY_DIR": str(rego)}
    )
    return result.exit_code, json.loads(result.stdout)


def deny_ids(decision: dict[str, Any]) -> set[str]:
    return {r["id"] for r in decision["reasons"]}


def cli(args: list[str], server: str, bearer_token: str) -> Any:
    return runner.invoke(app, [*args, "--server", server], env={"POLICYGATE_TOKEN": bearer_token})


def tags(mlflow_uri: str, name: str, version: str) -> dict[str, str]:
    return dict(MlflowClient(mlflow_uri).get_model_version(name, version).tags)


def intact(db: str) -> None:
    result = runner.invoke(app, ["log", "verify", "--db", db])
    assert result.exit_code == 0, result.output


@pytest.fixture
def served(mlflow_server: str, sqlite_url: str, directory: Path) -> Iterator[str]:
    env = {
        "POLICYGATE_DB_URL": sqlite_url,
        "POLICYGATE_AUTH_REQUIRED": "true",
        "MLFLOW_TRACKING_URI": mlflow_server,
        "POLICYGATE_DIRECTORY": f"file:{directory}",
        "POLICYGATE_DIRECTORY_CACHE_S": "0",
    }
    with Served(env) as server:
        yield server.base


def test_owner_review_clears_lif002_retire_denies_lif001_unretire_allows(
    mlflow_server: str, sqlite_url: str, served: str, tmp_path: Path
) -> None:
    short, shipped = policy(tmp_path, "short", SHORT_DAYS), policy(tmp_path, "shipped")
    spec = ModelSpec(f"lif-{uuid.uuid4().hex[:8]}")
    version = register(mlflow_server, spec)
    registered = time.monotonic()
    ref = f"mlflow:models:/{spec.name}/{version}"
    alice, mallory = token(sqlite_url, "alice@corp", "decide"), token(sqlite_url, "mallory@corp", "decide")
    bob = token(sqlite_url, "bob@corp", "approve")

    # someone else may not review: exit 2, nothing recorded
    refused = cli(["review", ref, "--note", "looks fine"], served, mallory)
    assert refused.exit_code == 2 and "only the owner" in refused.output and "mallory@corp" in refused.output
    # an approver is not the owner either
    assert cli(["review", ref], served, bob).exit_code == 2
    assert lifecycle_events(DecisionLog(sqlite_url), ref) == []

    # never reviewed: counts from registration; overdue once the short cadence has passed
    time.sleep(max(0.0, SHORT_DAYS * 86400 + 1 - (time.monotonic() - registered)))
    code, decision = check(mlflow_server, sqlite_url, ref, short)
    assert code == 1 and deny_ids(decision) == {"LIF-002"}, decision["reasons"]
    assert "never reviewed by the owner" in decision["reasons"][0]["message"]

    reviewed = cli(["review", ref, "--note", "use case and tier still hold"], served, alice)
    assert reviewed.exit_code == 0, reviewed.output
    assert reviewed.output.startswith(f"review {ref} by alice@corp")
    code, decision = check(mlflow_server, sqlite_url, ref, short)
    assert code == 0 and decision["outcome"] == "allow", decision["reasons"]
    stored = DecisionLog(sqlite_url).get(decision["decision_id"])
    assert stored is not None
    lifecycle = stored["evidence"]["lifecycle"]
    assert lifecycle["last_reviewed_by"] == "alice@corp" and lifecycle["retired"] is False
    assert lifecycle["reviews"][0]["note"] == "use case and tier still hold"

    # retire (the owner): every target denied LIF-001, the MLflow tag written
    assert cli(["retire", ref], served, alice).exit_code == 2  # --reason is required
    retired = cli(["retire", ref, "--reason", "superseded by v2"], served, alice)
    assert retired.exit_code == 0, retired.output
    assert tags(mlflow_server, spec.name, version)["policygate.lifecycle"] == "retired"
    code, decision = check(mlflow_server, sqlite_url, ref, shipped)
    assert code == 1 and deny_ids(decision) == {"LIF-001"}, decision["reasons"]
    assert "superseded by v2" in decision["reasons"][0]["message"]
    again = cli(["retire", ref, "--reason", "twice"], served, alice)
    assert again.exit_code == 2 and "already retired" in again.output
    shown = runner.invoke(app, ["log", "show", ref, "--db", sqlite_url])
    assert shown.exit_code == 0 and "RETIRED: LIF-001" in shown.output, shown.output

    # an alias still serving the retired version: the audit names it retired-in-use; the owners
    # report carries the owner's review and when the next one is due
    MlflowClient(mlflow_server).set_registered_model_alias(spec.name, "champion", version)
    audited = runner.invoke(
        app, ["audit", "run", "--mlflow-uri", mlflow_server, "--db", sqlite_url, "-f", "json"],
        env={"POLICYGATE_POLICY_DIR": str(shipped)},
    )  # fmt: skip
    assert audited.exit_code == 1, audited.output
    found = {(f["kind"], tuple(f.get("reasons") or [])) for f in json.loads(audited.stdout)["findings"]}
    assert any(kind == "retired-in-use" for kind, _ in found), found
    owners = runner.invoke(app, ["report", "owners", "--db", sqlite_url, "--format", "csv"])
    assert owners.exit_code == 0, owners.output
    # the MLflow server is shared by the session: other tests' models in use are listed too
    row = next(r for r in csv.DictReader(io.StringIO(owners.stdout)) if r["model"] == ref)
    assert (row["model"], row["owner"], row["owner_status"]) == (ref, "alice@corp", "active")
    assert row["last_reviewed_by"] == "alice@corp" and row["next_review_due"] > row["last_review"]
    assert "retired-in-use" in row["findings"]
    MlflowClient(mlflow_server).delete_registered_model_alias(spec.name, "champion")

    # un-retire: not by someone else; by an approver, with a reason, recorded
    assert cli(["unretire", ref, "--reason", "mine now"], served, mallory).exit_code == 2
    back = cli(["unretire", ref, "--reason", "v2 rolled back"], served, bob)
    assert back.exit_code == 0, back.output
    assert tags(mlflow_server, spec.name, version)["policygate.lifecycle"] == "active"
    code, decision = check(mlflow_server, sqlite_url, ref, shipped)
    assert code == 0 and decision["outcome"] == "allow", decision["reasons"]
    events = [(e.kind, e.by, e.reason_or_note) for e in lifecycle_events(DecisionLog(sqlite_url), ref)]
    assert events == [
        ("review", "alice@corp", "use case and tier still hold"),
        ("retire", "alice@corp", "superseded by v2"),
        ("unretire", "bob@corp", "v2 rolled back"),
    ]
    shown = runner.invoke(app, ["log", "show", ref, "--db", sqlite_url, "--format", "json"])
    timeline = [(e["kind"], e["by"]) for e in json.loads(shown.stdout)["lifecycle"]]
    assert timeline == [("review", "alice@corp"), ("retire", "alice@corp"), ("unretire", "bob@corp")]
    assert "RETIRED" not in runner.invoke(app, ["log", "show", ref, "--db", sqlite_url]).output
    intact(sqlite_url)

    # the evidence pack carries the three events, named in its summary, and verifies offline
    key, pub = create_key(tmp_path / "checkpoint.key")
    out = tmp_path / "pack.tar.gz"
    packed = runner.invoke(
        app,
        ["log", "pack", ref, "--out", str(out), "--db", sqlite_url],
        env={"POLICYGATE_CHECKPOINT_KEY": str(key)},
    )
    assert packed.exit_code == 0, packed.output
    summary = pack_members(out)["SUMMARY.md"].decode()
    assert "retire by alice@corp: superseded by v2" in summary and "unretire by bob@corp" in summary
    verified = runner.invoke(app, ["log", "pack", "verify", str(out), "--key", str(pub)])
    assert verified.exit_code == 0, verified.output


def test_routes_refuse_bad_input_and_strangers_and_remove_aliases(
    mlflow_server: str, sqlite_url: str, directory: Path, tmp_path: Path
) -> None:
    settings = Settings(
        db_url=sqlite_url,
        policy_dir=policy(tmp_path, "shipped"),
        opa_bin=opa_binary(),
        mlflow_uri=mlflow_server,
        directory=f"file:{directory}",
        directory_cache_s=0,
        auth_required=True,
        retire_remove_aliases=True,
    )
    spec = ModelSpec(f"lif-{uuid.uuid4().hex[:8]}", alias="champion")
    version = register(mlflow_server, spec)
    ref = f"mlflow:models:/{spec.name}/{version}"
    alice, mallory = token(sqlite_url, "alice@corp", "decide"), token(sqlite_url, "mallory@corp", "decide")
    reader = token(sqlite_url, "alice@corp", "read")
    with TestClient(create_app(settings)) as api:

        def post(path: str, who: str, body: dict[str, Any] | None = None) -> Any:
            return api.post(f"/v1/models/{path}", json=body or {}, headers=bearer(who))

        assert post(f"{ref}/reviews", mallory).status_code == 403
        assert post(f"{ref}/reviews", reader).status_code == 403  # a read token may not write
        assert api.post(f"/v1/models/{ref}/reviews", json={}).status_code == 401
        assert post(f"mlflow:models:/{spec.name}@champion/reviews", alice).status_code == 422  # an alias
        assert post("not-a-ref/reviews", alice).status_code == 422
        assert post(f"mlflow:models:/{spec.name}/999/reviews", alice).status_code == 404
        assert post(f"{ref}/retirement", alice).status_code == 422  # no reason
        assert post(f"{ref}/retirement", alice, {"reason": "  "}).status_code == 422
        assert post(f"{ref}/retirement", alice, {"reason": "x", "by": "bob@corp"}).status_code == 422
        assert post(f"{ref}/retirement", mallory, {"reason": "not mine"}).status_code == 403
        gone = api.request(
            "DELETE", f"/v1/models/{ref}/retirement", json={"reason": "never retired"}, headers=bearer(alice)
        )
        assert gone.status_code == 409
        assert lifecycle_events(DecisionLog(sqlite_url), ref) == []

        done = post(f"{ref}/retirement", alice, {"reason": "replaced"})
        assert done.status_code == 201, done.text
        answer = done.json()
        assert answer["written_back"] is True and answer["lifecycle"]["retired"] is True
        assert answer["event"]["by"] == "alice@corp" and answer["event"]["caller"] == "token:alice@corp"
        mv = MlflowClient(mlflow_server).get_model_version(spec.name, version)
        assert mv.tags["policygate.lifecycle"] == "retired" and list(mv.aliases) == []
        reviewed = post(f"{ref}/reviews", alice, {"note": "still mine"})
        assert reviewed.status_code == 201 and reviewed.json()["written_back"] is False
        decided = api.post(
            "/v1/decisions",
            json={"model": ref, "target": {"stage": "development"}},
            headers=bearer(token(sqlite_url, "ci@corp", "decide")),
        ).json()
        assert decided["outcome"] == "deny" and {r["id"] for r in decided["reasons"]} == {"LIF-001"}
        page = api.get(f"/ui/models/{quote(ref, safe='')}", headers=bearer(reader))
        assert page.status_code == 200, page.text
        assert "retired</span> LIF-001 denies" in page.text and "replaced" in page.text
        assert "still mine" in page.text and "active person" in page.text  # alice, as file: sees her
    intact(sqlite_url)
