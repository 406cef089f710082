"""The auditor's test (issue 32): a world on a real MLflow server (a model gated with its change ticket,
one aliased by hand, one whose approval was withdrawn after release, one whose owner tag was removed
after release, one released under a waiver) and the seven questions answered from ONE `policygate
register --refresh` call plus one `log pack` per model, verified offline: no joins, no database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from policygate.api.app import create_app
from policygate.cli import app
from policygate.config import Settings
from policygate.decisions.checkpoint import create_key
from policygate.demo.mlflow_server import MlflowServer
from policygate.demo.seed import ModelSpec, register
from tests.support.checkout import REGO, opa_binary
from tests.support.governed import RUN, aliased_by_hand, checked_in_use, pack_members, released
from tests.support.tokens import bearer, token

runner = CliRunner()
COMMIT = ModelSpec("x").commit
OFFLINE = {"POLICYGATE_DB_URL": "postgresql://nobody@127.0.0.1:1/none", "MLFLOW_TRACKING_URI": ""}


@dataclass
class World:
    uri: str
    db: str
    key: Path
    pub: Path
    tmp: Path
    refs: dict[str, str] = field(default_factory=dict)
    approval_id: str = ""
    withdrawal_id: str = ""
    waiver_id: str = ""


def _seed(w: World) -> None:
    w.refs["gated"] = released(w.uri, w.db, ModelSpec("gated"), ticket="CHG-1")
    w.refs["bypassed"] = aliased_by_hand(w.uri, ModelSpec("bypassed"))
    w.refs["ownerless"] = released(w.uri, w.db, ModelSpec("ownerless"), ticket="CHG-4")
    granted = runner.invoke(
        app,
        [
            "waiver", "add", "--rule", "APR-002", "--model", "mlflow:models:/waived/*", "--reason",
            "owner sign-off accepted for the pilot", "--approved-by", "ciso@corp", "--expires", "30d",
            "--db", w.db, "-f", "json",
        ],
    )  # fmt: skip
    assert granted.exit_code == 0, granted.output
    w.waiver_id = json.loads(granted.stdout)["id"]
    withdrawn = ModelSpec("withdrawn", approvals=[])  # only carol's approval, recorded through policygate
    w.refs["withdrawn"] = f"mlflow:models:/withdrawn/{register(w.uri, withdrawn, train=True)}"
    # the owner approved her own model too: APR-002 denies it, the waiver lets it through
    waived = ModelSpec("waived", approvals=[("bob@corp", "production", 0), ("alice@corp", "production", 0)])
    w.refs["waived"] = f"mlflow:models:/waived/{register(w.uri, waived, train=True)}"
    carol, bot = token(w.db, "carol@corp", "approve"), token(w.db, "ci-bot", "decide,read,delegate")
    settings = Settings(db_url=w.db, mlflow_uri=w.uri, policy_dir=REGO, opa_bin=opa_binary())
    with TestClient(create_app(settings)) as api:
        approved = api.post(
            "/v1/approvals", json={"model": w.refs["withdrawn"], "stage": "production"}, headers=bearer(carol)
        )
        assert approved.status_code == 201, approved.text
        w.approval_id = approved.json()["approval"]["id"]
        checked_in_use(w.uri, w.db, w.refs["withdrawn"], ticket="CHG-3")
        taken_back = api.delete(f"/v1/approvals/{w.approval_id}", headers=bearer(carol))
        assert taken_back.status_code == 200, taken_back.text
        w.withdrawal_id = taken_back.json()["approval"]["id"]
        body = {"model": w.refs["waived"], "target": {"stage": "production"}, "requested_by": "erin@corp",
                "ticket": "CHG-5", "run_url": RUN}  # fmt: skip
        decided = api.post("/v1/decisions", json=body, headers=bearer(bot))
        assert decided.status_code in (200, 201) and decided.json()["outcome"] == "allow", decided.text
    client = MlflowClient(w.uri, registry_uri=w.uri)
    client.set_registered_model_alias("waived", "champion", w.refs["waived"].rsplit("/", 1)[1])
    client.delete_registered_model_tag("ownerless", "owner")  # after its release


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("auditor")
    key, pub = create_key(tmp / "checkpoint.key")
    with MlflowServer(tmp_path_factory.mktemp("auditor-mlflow")) as server:
        w = World(server.url, f"sqlite:///{tmp}/decisions.db", key, pub, tmp)
        _seed(w)
        yield w


@pytest.fixture(scope="module")
def answers(world: World) -> dict[str, Any]:
    """ONE register call (it runs the audit first) and one pack per model: all the auditor reads."""
    result = runner.invoke(
        app, ["register", "--refresh", "--mlflow-uri", world.uri, "--db", world.db, "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    register_json = json.loads(result.stdout)
    packs: dict[str, Path] = {}
    for name, ref in world.refs.items():
        out = world.tmp / f"{name}.tar.gz"
        packed = runner.invoke(
            app,
            ["log", "pack", ref, "--out", str(out), "--db", world.db],
            env={"POLICYGATE_CHECKPOINT_KEY": str(world.key)},
        )
        assert packed.exit_code == 0, packed.output
        packs[name] = out
    rows = {r["model"].split("/")[-2]: r for r in register_json["rows"]}
    return {"register": register_json, "rows": rows, "packs": packs}


def test_1_which_models_are_in_use(answers: dict[str, Any]) -> None:
    rows = answers["rows"]
    assert sorted(rows) == ["bypassed", "gated", "ownerless", "waived", "withdrawn"]
    assert {(r["target"], r["via"]) for r in rows.values()} == {("production", "alias champion")}
    assert answers["register"]["complete"] is True


def test_2_who_owns_each_at_release_and_now(answers: dict[str, Any]) -> None:
    owners = {
        n: (r["owner_at_release"], r["owner_now"], r["owner_changed"]) for n, r in answers["rows"].items()
    }
    assert owners["gated"] == ("alice@corp", "alice@corp", False)
    assert owners["ownerless"] == ("alice@corp", None, True)  # the tag removed after release
    assert owners["bypassed"] == (None, "alice@corp", False)  # never released: the platform's owner


def test_3_the_policy_at_release_is_in_the_pack(answers: dict[str, Any]) -> None:
    for name, row in answers["rows"].items():
        if name == "bypassed":
            assert row["policy_revision"] is None
            continue
        revision = row["policy_revision"]
        assert revision.startswith("sha256:"), (name, row)
        files = pack_members(answers["packs"][name])
        kept = [n for n in files if n.startswith(f"policy/{revision.removeprefix('sha256:')}/")]
        assert any(n.endswith(".rego") for n in kept), (name, sorted(files))


def test_4_the_release_decision_its_approvals_and_waivers(world: World, answers: dict[str, Any]) -> None:
    rows = answers["rows"]
    for name in ("gated", "ownerless", "waived", "withdrawn"):
        assert rows[name]["outcome"] == "allow" and rows[name]["decision_id"], (name, rows[name])
    gated, waived, withdrawn = rows["gated"], rows["waived"], rows["withdrawn"]
    assert (gated["requested_by"], gated["sent_by"]) == ("ci@corp", None)  # a local `check`
    assert (waived["requested_by"], waived["sent_by"]) == ("erin@corp", "token:ci-bot")
    assert [(a["by"], a["verified"]) for a in gated["approvals"]] == [("bob@corp", False)]
    assert [(a["by"], a["id"], a["verified"]) for a in withdrawn["approvals"]] == [
        ("carol@corp", world.approval_id, True)
    ]
    assert [(x["by"], x["decision"], x["id"], x["withdraws"]) for x in withdrawn["withdrawn"]] == [
        ("carol@corp", "withdrawn", world.withdrawal_id, world.approval_id)
    ]
    assert withdrawn["withdrawn"][0]["at"] >= withdrawn["decided_at"][:10]
    assert [(x["rule"], x["waiver"], x["reason"]) for x in waived["waivers"]] == [
        ("APR-002", world.waiver_id, "owner sign-off accepted for the pilot")
    ]
    assert gated["waivers"] == [] and gated["withdrawn"] == []
    assert rows["bypassed"]["decision_id"] is None and rows["bypassed"]["approvals"] == []


def test_5_the_data_and_workflow_and_the_change(answers: dict[str, Any]) -> None:
    gated = answers["rows"]["gated"]
    assert gated["run"].startswith("mlflow:") and gated["commit"] == COMMIT and gated["datasets"]
    assert (gated["ticket"], gated["run_url"]) == ("CHG-1", RUN)
    assert (answers["rows"]["waived"]["ticket"], answers["rows"]["withdrawn"]["ticket"]) == ("CHG-5", "CHG-3")
    assert "CHG-1" in pack_members(answers["packs"]["gated"])["SUMMARY.md"].decode()


def test_6_models_with_no_valid_release(answers: dict[str, Any]) -> None:
    rows = answers["rows"]
    invalid = {n for n, r in rows.items() if r["outcome"] != "allow" or r["withdrawn"]}
    assert invalid == {"bypassed", "withdrawn"}
    assert rows["bypassed"]["findings"] == ["bypass:AUD-001"]
    assert rows["gated"]["findings"] == [] and rows["gated"]["audit_outcome"] == "allow"
    # judged now: the withdrawn approval and the missing owner no longer pass
    assert rows["withdrawn"]["audit_outcome"] == "deny" and rows["withdrawn"]["findings"]
    assert rows["ownerless"]["audit_outcome"] == "deny" and rows["ownerless"]["findings"]


def test_7_the_record_was_not_altered(world: World, answers: dict[str, Any]) -> None:
    for name, pack in answers["packs"].items():
        verified = runner.invoke(
            app, ["log", "pack", "verify", str(pack), "--key", str(world.pub)], env=OFFLINE
        )
        assert verified.exit_code == 0, (name, verified.output)
        assert f"about {world.refs[name]} proven" in verified.output
    kinds = [
        r["kind"] for r in json.loads(pack_members(answers["packs"]["withdrawn"])["manifest.json"])["records"]
    ]
    assert {"decision", "approval", "audit"} <= set(kinds) and kinds.count("approval") == 2, kinds
