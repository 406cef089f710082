"""What is true now, everywhere, against a real MLflow server of its own: an approval withdrawn after the
release, an unverified (MLflow tag) approval, the identity that sent each decision, an owner tag removed
after the release, a model aliased by hand and never checked (a bypass), and an alias moved between two
audit runs; `log show` (text, json), GET /v1/models/{ref}/record and the console's list and pages say so."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from policygate.api.app import create_app
from policygate.cli import app
from policygate.config import Settings
from policygate.demo.mlflow_server import MlflowServer
from policygate.demo.seed import ModelSpec, register
from policygate.webhooks.signatures import sign
from tests.support.checkout import REGO, opa_binary
from tests.support.served import Served
from tests.support.tokens import bearer, token

runner = CliRunner()
STAGE = {"stage": "production"}


@dataclass(frozen=True)
class World:
    uri: str
    db: str
    read: str  # a read token
    fraud: str  # approved by carol, released, her approval withdrawn after
    churn: str  # released on an MLflow-tag approval (unverified), its owner tag removed after
    sneaky: str  # aliased by hand, never checked; its alias moved on to sneaky_2 between two audits
    sneaky_2: str

    def settings(self) -> Settings:
        return Settings(db_url=self.db, mlflow_uri=self.uri, policy_dir=REGO, opa_bin=opa_binary())


def audit(world_uri: str, db: str) -> None:
    result = runner.invoke(app, ["audit", "run", "--mlflow-uri", world_uri, "--db", db, "-f", "json"])
    assert result.exit_code in (1, 2), result.output  # findings: the bypass


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    db = f"sqlite:///{tmp_path_factory.mktemp('truth')}/decisions.db"
    with MlflowServer(tmp_path_factory.mktemp("truth-mlflow")) as server:
        uri = server.url
        client = MlflowClient(uri, registry_uri=uri)
        carol, ci = token(db, "carol@corp", "approve"), token(db, "ci-bot", "decide,read")
        read = token(db, "auditor", "read")
        fraud = f"mlflow:models:/fraud/{register(uri, ModelSpec('fraud', approvals=[]), train=True)}"
        churn = f"mlflow:models:/churn/{register(uri, ModelSpec('churn'), train=True)}"
        settings = Settings(db_url=db, mlflow_uri=uri, policy_dir=REGO, opa_bin=opa_binary())
        with TestClient(create_app(settings)) as api:
            approved = api.post(
                "/v1/approvals", json={"model": fraud, "stage": "production"}, headers=bearer(carol)
            )
            assert approved.status_code == 201, approved.text
            for ref in (fraud, churn):
                decided = api.post("/v1/decisions", json={"model": ref, "target": STAGE}, headers=bearer(ci))
                assert decided.json()["outcome"] == "allow", decided.text
                client.set_registered_model_alias(ref.split("/")[-2], "champion", ref.split("/")[-1])
            withdrawn = api.delete(
                f"/v1/approvals/{approved.json()['approval']['id']}",
                params={"comment": "the holdout set leaked"},
                headers=bearer(carol),
            )
            assert withdrawn.status_code == 200, withdrawn.text
        client.delete_registered_model_tag("churn", "owner")  # after its release
        sneaky = register(uri, ModelSpec("sneaky"), train=True)
        client.set_registered_model_alias("sneaky", "champion", sneaky)
        audit(uri, db)
        sneaky_2 = register(uri, ModelSpec("sneaky"), train=True)
        client.set_registered_model_alias("sneaky", "champion", sneaky_2)  # moved by hand
        audit(uri, db)
        yield World(
            uri,
            db,
            read,
            fraud,
            churn,
            f"mlflow:models:/sneaky/{sneaky}",
            f"mlflow:models:/sneaky/{sneaky_2}",
        )


def show(world: World, ref: str, fmt: str = "json") -> Any:
    result = runner.invoke(app, ["log", "show", ref, "--db", world.db, "-f", fmt])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if fmt == "json" else result.stdout


def test_a_withdrawn_approval_is_shown_withdrawn_with_when_who_and_why(world: World) -> None:
    record = show(world, world.fraud)
    (carol,) = [a for a in record["approvals_now"] if a["by"] == "carol@corp"]
    assert carol["state"] == "withdrawn" and carol["verified"] is True
    taken = carol["taken_back"]
    assert (taken["by"], taken["sent_by"], taken["reason"]) == (
        "carol@corp",
        "token:carol@corp",
        "the holdout set leaked",
    )
    assert taken["at"] > carol["at"]
    (production,) = record["latest_decisions"].values()
    assert production["sent_by"] == "token:ci-bot" and record["history"][0]["sent_by"] == "token:ci-bot"
    text = show(world, world.fraud, "text")
    assert "WITHDRAWN  carol@corp approved production" in text and "the holdout set leaked" in text
    assert "STANDING   carol" not in text and "sent by token:ci-bot" in text


def test_an_mlflow_tag_approval_is_unverified_and_a_removed_owner_is_an_owner_change(world: World) -> None:
    record = show(world, world.churn)
    states = {(a["by"], a["state"]) for a in record["approvals_now"]}
    assert ("bob@corp", "unverified") in states and not any(s == "standing" for _, s in states)
    owner = record["owner_since_release"]
    assert owner["changed"] is True
    assert (owner["at_release"]["owner"], owner["at_release"]["source"]) == ("alice@corp", "release decision")
    assert owner["now"]["source"] == "audit run" and owner["now"]["owner"] != "alice@corp"
    text = show(world, world.churn, "text")
    assert "OWNER CHANGED SINCE RELEASE: alice@corp in release decision" in text and "in audit run" in text
    assert "UNVERIFIED bob@corp" in text
    assert show(world, world.fraud)["owner_since_release"]["changed"] is False


def test_an_alias_moved_between_two_audit_runs_is_one_move(world: World) -> None:
    old, new = world.sneaky.split("/")[-1], world.sneaky_2.split("/")[-1]
    for ref in (world.sneaky, world.sneaky_2):
        record = show(world, ref)
        moves = record["alias_moves"]
        assert [(m["alias"], m["from_version"], m["to_version"], m["seen_by"]) for m in moves] == [
            ("champion", old, new, "audit")
        ]
        assert "MLflow keeps no alias history" in record["alias_moves_note"]
    text = show(world, world.sneaky_2, "text")
    assert f"champion  {old} -> {new}  seen by audit" in text and "MLflow keeps no alias history" in text
    assert show(world, world.fraud)["alias_moves"] == []  # set once, never moved: nothing seen


def test_a_bypassed_model_has_a_record_a_page_and_a_place_in_the_list(world: World) -> None:
    record = show(world, world.sneaky_2)
    assert record["no_release_decision"] is True and record["history"] == []
    assert record["decisions"]["total"] == 0
    (seen,) = record["in_use"]
    assert (seen["target"], seen["via"], seen["owner"]) == ("production", "alias champion", "alice@corp")
    assert [f["reasons"] for f in seen["findings"]] == [["AUD-001"]]
    assert "IN USE, NO RELEASE DECISION" in show(world, world.sneaky_2, "text")
    with TestClient(create_app(world.settings())) as api:
        auth = bearer(world.read)
        answer = api.get(f"/v1/models/{world.sneaky_2}/record", headers=auth)
        assert answer.status_code == 200, answer.text
        assert answer.json()["latest_decisions"] == {} and answer.json()["in_use"][0]["alias"] == "champion"
        assert api.get("/v1/models/mlflow:models:/nobody/1/record", headers=auth).status_code == 404
        # the old version is no longer in use, but an earlier audit run saw it: it answers, saying so
        old = api.get(f"/v1/models/{world.sneaky}/record", headers=auth).json()
        assert old["in_use"] == [] and old["last_in_use"][0]["via"] == "alias champion"
        listing = api.get("/ui", headers=auth).text
        assert "In use, no release decision" in listing and world.sneaky_2 in listing
        assert f'href="/ui/models/{quote(world.sneaky_2, safe="")}"' in listing
        assert api.get("/ui", params={"outcome": "allow"}, headers=auth).text.count(world.sneaky_2) == 0
        page = api.get(f"/ui/models/{quote(world.sneaky_2, safe='')}", headers=auth)
        assert page.status_code == 200 and "in use, no release decision" in page.text
        assert "alias champion" in page.text and "AUD-001" in page.text and "alice@corp" in page.text
        assert "MLflow keeps no alias history" in page.text


def test_the_console_model_page_says_what_is_true_now(world: World) -> None:
    with TestClient(create_app(world.settings())) as api:
        auth = bearer(world.read)
        fraud = api.get(f"/ui/models/{quote(world.fraud, safe='')}", headers=auth).text
        assert "withdrawn</span>" in fraud and "the holdout set leaked" in fraud
        assert "sent by token:ci-bot" in fraud
        churn = api.get(f"/ui/models/{quote(world.churn, safe='')}", headers=auth).text
        assert "owner changed since release" in churn and "unverified</span>" in churn
        record = api.get(f"/v1/models/{world.fraud}/record", headers=auth).json()
        assert record["approvals_now"][0]["state"] == "withdrawn"


def alias_delivery(name: str, version: str, secret: str) -> tuple[bytes, dict[str, str]]:
    """A signed MLflow ``model_version_alias.created`` delivery, as MLflow sends it."""
    body = {"entity": "model_version_alias", "action": "created", "timestamp": "2026-12-07T00:00:00Z"}
    raw = json.dumps({**body, "data": {"name": name, "alias": "champion", "version": version}}).encode()
    did, ts = str(uuid.uuid4()), str(int(time.time()))
    headers = {"content-type": "application/json", "x-mlflow-delivery-id": did, "x-mlflow-timestamp": ts}
    return raw, {**headers, "x-mlflow-signature": sign(secret, did, ts, raw)}


def test_alias_moves_from_webhook_deliveries(mlflow_server: str, sqlite_url: str) -> None:
    name = f"moved-{uuid.uuid4().hex[:6]}"
    first, second = (register(mlflow_server, ModelSpec(name), train=True) for _ in range(2))
    settings = Settings(
        db_url=sqlite_url,
        mlflow_uri=mlflow_server,
        policy_dir=REGO,
        opa_bin=opa_binary(),
        mlflow_webhook_secret="s3cret",  # type: ignore[arg-type]
    )
    with TestClient(create_app(settings)) as api:
        for version in (first, second):
            raw, headers = alias_delivery(name, version, "s3cret")
            assert api.post("/v1/webhooks/mlflow", content=raw, headers=headers).status_code == 202
        for version in (first, second):  # each delivery is decided in the background
            deadline = time.monotonic() + 120
            while api.get(f"/v1/models/mlflow:models:/{name}/{version}/record").status_code != 200:
                assert time.monotonic() < deadline, "the delivery was not decided in 120 s"
                time.sleep(0.5)
        moves = api.get(f"/v1/models/mlflow:models:/{name}/{second}/record").json()["alias_moves"]
        assert [(m["alias"], m["from_version"], m["to_version"], m["seen_by"]) for m in moves] == [
            ("champion", first, second, "webhook")
        ]
        set_first = api.get(f"/v1/models/mlflow:models:/{name}/{first}/record").json()["alias_moves"]
        assert [(m["from_version"], m["to_version"]) for m in set_first] == [(None, first), (first, second)]


def test_a_bypassed_model_in_the_console_in_a_real_browser(world: World) -> None:
    """Signed in as an auditor: the bypassed version is in the models list and its page opens."""
    from playwright.sync_api import sync_playwright

    env = {
        "POLICYGATE_DB_URL": world.db,
        "POLICYGATE_MLFLOW_URI": world.uri,
        "POLICYGATE_AUTH_REQUIRED": "true",
    }
    browser_bin = os.environ.get("POLICYGATE_CHROMIUM", "/usr/bin/chromium")
    with Served(env) as server, sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=browser_bin, args=["--no-sandbox"])
        try:
            page = chromium.new_context().new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.base + "/ui/sign-in")
            page.fill("#token", world.read)
            page.click("button[type=submit]")
            page.wait_for_url(server.base + "/ui")
            row = page.locator("table.bypassed tr", has_text=world.sneaky_2)
            assert row.count() == 1 and "alias champion" in row.inner_text()
            assert "no release decision" in row.inner_text()
            row.get_by_role("link", name=world.sneaky_2).click()
            page.wait_for_load_state()
            assert page.get_by_role("heading", level=1).inner_text() == world.sneaky_2
            assert "in use, no release decision" in page.inner_text("main")
            assert page.locator("#alias-moves-h").count() == 1 and errors == []
        finally:
            chromium.close()
