"""The continuous audit against a real MLflow server of its own (so that every model in use is one a test
put there), the real OPA and a SQLite log: what is in use, each finding, incremental runs, enforcement,
the report formats and exit codes, the API and the schedule."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from policygate.api.app import create_app
from policygate.audit.run import Auditor, latest_run
from policygate.cli import app
from policygate.config import Settings
from policygate.decisions.log import DecisionLog
from policygate.demo.mlflow_server import MlflowServer
from policygate.demo.seed import ModelSpec, register
from policygate.evidence import Target
from policygate.refs import parse
from policygate.runtime import open_runtime
from policygate.webhooks.worker import Job, WebhookWorker
from tests.support.checkout import REGO, opa_binary, policy_copy, without_shipped_tests
from tests.support.tcp_proxy import TcpProxy

runner = CliRunner()


@pytest.fixture(scope="module")
def audit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with MlflowServer(tmp_path_factory.mktemp("audit-mlflow")) as server:
        yield server.url


@pytest.fixture
def registry(audit_server: str) -> str:
    """A real MLflow server whose registry is empty when the test starts: the audit lists every model
    in it, so each test sees only the models it registered."""
    client = MlflowClient(audit_server, registry_uri=audit_server)
    for rm in client.search_registered_models(max_results=1000):
        client.delete_registered_model(rm.name)
    assert not client.search_registered_models()
    return audit_server


def settings_for(mlflow_uri: str, db: str, **extra: Any) -> Settings:
    return Settings(db_url=db, mlflow_uri=mlflow_uri, policy_dir=REGO, opa_bin=opa_binary(), **extra)


def promote(mlflow_uri: str, db: str, name: str, **spec: Any) -> str:
    """Register a version, gate it with `policygate check` (allow), then set the alias: the CI way."""
    version = register(mlflow_uri, ModelSpec(name, **spec))
    result = runner.invoke(
        app, ["check", f"mlflow:models:/{name}/{version}", "-t", "production", "--mlflow-uri", mlflow_uri,
              "--db", db, "-f", "json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    MlflowClient(mlflow_uri).set_registered_model_alias(name, "champion", version)
    return version


def audit(
    mlflow_uri: str, db: str, *args: str, env: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(
        app, ["audit", "run", "--mlflow-uri", mlflow_uri, "--db", db, "-f", "json", *args], env=env
    )
    assert result.exit_code in (0, 1, 2), result.output
    return result.exit_code, json.loads(result.stdout)


def findings_of(run: dict[str, Any], name: str) -> list[tuple[str, list[str]]]:
    return [(f["kind"], f["reasons"]) for f in run["findings"] if f["name"] == name]


def test_a_gated_model_is_clean_and_an_alias_set_by_hand_is_a_bypass(registry: str, sqlite_url: str) -> None:
    promote(registry, sqlite_url, "fraud")
    sneaky = register(registry, ModelSpec("sneaky"))
    MlflowClient(registry).set_registered_model_alias("sneaky", "champion", sneaky)
    register(registry, ModelSpec("unaliased"))  # registered, serving nothing: not in use

    code, run = audit(registry, sqlite_url)

    assert code == 1
    assert sorted((m["name"], m["target"], m["via"]) for m in run["models"]) == [
        ("fraud", "production", "alias champion"),
        ("sneaky", "production", "alias champion"),
    ]
    assert findings_of(run, "fraud") == []
    assert findings_of(run, "sneaky") == [("bypass", ["AUD-001"])]
    assert run["status"] == "findings" and run["complete"] is True
    log = DecisionLog(sqlite_url, create=False)
    try:
        # one record of its own kind: never a release decision, and the chain still verifies
        assert [r.kind for r in log.records()].count("audit") == 1
        assert log.query(model="mlflow:models:/sneaky/1") == []
        assert log.verify().ok
    finally:
        log.close()

    report = runner.invoke(app, ["audit", "report", "--db", sqlite_url, "-f", "csv"])
    assert report.exit_code == 1
    rows = list(csv.DictReader(io.StringIO(report.stdout)))
    assert [(r["kind"], r["name"], r["reasons"], r["target"]) for r in rows] == [
        ("bypass", "sneaky", "AUD-001", "production")
    ]
    junit = ET.fromstring(runner.invoke(app, ["audit", "report", "--db", sqlite_url, "-f", "junit"]).stdout)
    failing = [c.get("name") for c in junit.iter("testcase") if c.find("failure") is not None]
    assert failing == ["mlflow:models:/sneaky/1 -> production (alias champion)"]
    github = runner.invoke(
        app, ["audit", "report", "--db", sqlite_url, "-f", "github", "--run", run["run_id"]]
    )
    assert github.exit_code == 1 and github.stdout.startswith("::error title=policygate audit bypass")
    text = runner.invoke(app, ["audit", "report", "--db", sqlite_url])
    assert "bypass (1)" in text.stdout and "mlflow:models:/sneaky/1" in text.stdout


def test_clean_exit_zero_and_an_unchanged_run_collects_nothing(registry: str, sqlite_url: str) -> None:
    for n in range(3):
        promote(registry, sqlite_url, f"model-{n}")

    code, first = audit(registry, sqlite_url)
    assert (code, first["status"], first["findings"]) == (0, "clean", [])
    assert all(m["collected"] for m in first["models"]) and first["calls"] >= 3 * 4

    code, second = audit(registry, sqlite_url)
    assert (code, second["findings"]) == (0, [])
    assert not any(m["collected"] for m in second["models"])
    assert second["calls"] == 2  # the two listings, no call per model
    assert {m["evidence_in"] for m in second["models"]} == {f"audit:{first['run_id']}"}

    # a changed version (its approvals tag) is collected again, the others are not
    MlflowClient(registry).set_model_version_tag("model-1", "1", "approvals", "[]")
    code, third = audit(registry, sqlite_url)
    assert code == 1
    assert {m["name"]: m["collected"] for m in third["models"]} == {
        "model-0": False, "model-1": True, "model-2": False,
    }  # fmt: skip
    kinds = findings_of(third, "model-1")
    assert ("drift", ["APR-001"]) in kinds
    assert any(kind == "bypass" and reasons == ["AUD-002"] for kind, reasons in kinds)
    changed = next(f for f in third["findings"] if f["reasons"] == ["AUD-002"])
    assert "approvals" in changed["changed"] and "subject.tags" in changed["changed"]


def test_an_approval_that_ages_past_its_maximum_is_drift_even_when_nothing_is_collected(
    registry: str, sqlite_url: str
) -> None:
    promote(registry, sqlite_url, "ageing")
    settings = settings_for(registry, sqlite_url, audit_full_every_s=200 * 86400)
    with open_runtime(settings) as runtime:
        now = datetime.now(UTC)
        first = Auditor(runtime.service, settings, clock=lambda: now).run()
        assert first.findings == [] and first.models[0].collected
        later = now + timedelta(days=91)  # max_approval_age_days is 90
        second = Auditor(runtime.service, settings, clock=lambda: later).run()
    assert not second.models[0].collected  # the same version: judged again, not collected again
    assert [(f.kind, f.name) for f in second.findings] == [("drift", "ageing")]
    assert "APR-003" in second.findings[0].reasons
    assert second.exit_code == 1


def test_a_policy_change_that_starts_denying_is_drift(registry: str, sqlite_url: str, tmp_path: Path) -> None:
    promote(registry, sqlite_url, "tightened")
    assert audit(registry, sqlite_url)[0] == 0
    stricter = without_shipped_tests(policy_copy(tmp_path), keep_helpers=False)  # they assume 1
    data = json.loads((stricter / "data.json").read_text())
    data["policygate_params"]["required_approvals"]["production"]["medium"] = 2
    (stricter / "data.json").write_text(json.dumps(data))

    code, run = audit(registry, sqlite_url, env={"POLICYGATE_POLICY_DIR": str(stricter)})

    assert code == 1
    assert findings_of(run, "tightened") == [("drift", ["APR-001"])]
    assert run["models"][0]["collected"]  # a new policy revision: collected afresh


def test_the_owner_removed_after_the_decision_is_drift_and_a_changed_evidence_bypass(
    registry: str, sqlite_url: str
) -> None:
    promote(registry, sqlite_url, "orphaned")
    MlflowClient(registry).delete_registered_model_tag("orphaned", "owner")
    code, run = audit(registry, sqlite_url)
    assert code == 1
    kinds = dict((k, r) for k, r in findings_of(run, "orphaned"))
    assert "drift" in kinds and any(r.startswith("OWN-") for r in kinds["drift"])
    changed = next(f for f in run["findings"] if f["kind"] == "bypass")
    assert changed["reasons"] == ["AUD-002"] and changed["changed"] == ["ownership"]
    assert changed["decision_id"] is not None


def test_mlflow_stopped_mid_run_is_unreachable_and_exit_2(registry: str, sqlite_url: str) -> None:
    for n in range(3):
        promote(registry, sqlite_url, f"reach-{n}")
    url = urlsplit(registry)
    assert url.hostname is not None and url.port is not None
    proxies: list[TcpProxy] = []

    def stop_at_first_collection(method: str, path: str) -> None:
        if "/model-versions/get" in path:  # the models in use are listed: MLflow goes away now
            proxies[0].cut()

    proxies.append(TcpProxy(url.hostname, url.port, on_request=stop_at_first_collection))
    with proxies[0] as proxy:
        code, run = audit(f"http://127.0.0.1:{proxy.port}", sqlite_url)

    assert code == 2
    assert run["status"] == "incomplete" and run["complete"] is False
    assert run["unreached"] == [f"mlflow:models:/reach-{n}/1" for n in range(3)]
    unreachable = [f for f in run["findings"] if f["kind"] == "unreachable"]
    assert unreachable and all(f["reasons"] == ["ERR-SOURCE"] for f in unreachable)
    # the run that could not finish is recorded, naming what it could not reach
    log = DecisionLog(sqlite_url, create=False)
    try:
        recorded = latest_run(log)
    finally:
        log.close()
    assert (
        recorded is not None and recorded.run_id == run["run_id"] and recorded.unreached == run["unreached"]
    )

    # MLflow gone before anything is listed: the run says it could not audit
    code, run = audit("http://127.0.0.1:9", sqlite_url)
    assert code == 2 and run["errors"] and run["errors"][0].startswith("mlflow: ")


def test_missed_event_when_webhooks_are_expected(registry: str, sqlite_url: str) -> None:
    settings = settings_for(registry, sqlite_url, audit_expect_webhooks=True)
    promote(registry, sqlite_url, "silent")  # alias set, but no delivery recorded
    version = register(registry, ModelSpec("delivered"))
    MlflowClient(registry).set_registered_model_alias("delivered", "champion", version)
    with open_runtime(settings) as runtime:
        worker = WebhookWorker(runtime.service)
        ref = f"mlflow:models:/delivered/{version}"
        job = Job(f"mlflow:{uuid.uuid4()}", "mlflow", "model_version_alias.created", ref, "production",
                  "mlflow-webhook", "champion")  # fmt: skip
        assert worker.accept(job) == "accepted"
        worker.process(job)  # the decision the webhook asks for
        run = Auditor(runtime.service, settings).run()
    assert [(f.kind, f.reasons) for f in run.findings if f.name == "silent"] == [
        ("missed-event", ["AUD-003"])
    ]
    assert [f for f in run.findings if f.name == "delivered"] == []


def test_enforcement_tags_the_bypass_and_removes_its_alias(registry: str, sqlite_url: str) -> None:
    promote(registry, sqlite_url, "kept")
    sneaky = register(registry, ModelSpec("sneaked"))
    client = MlflowClient(registry)
    client.set_registered_model_alias("sneaked", "prod", sneaky)
    env = {"POLICYGATE_AUDIT_ENFORCE": "true", "POLICYGATE_AUDIT_REMOVE_ALIAS": "true"}
    code, run = audit(registry, sqlite_url, env=env)
    assert code == 1
    assert [(a["model"], a["action"], a["ok"]) for a in run["enforcement"]] == [
        ("mlflow:models:/sneaked/1", "tagged", True),
        ("mlflow:models:/sneaked/1", "alias_removed", True),
    ]
    tags = client.get_model_version("sneaked", sneaky).tags
    assert tags["policygate.decision"] == "deny" and tags["policygate.reasons"] == "AUD-001"
    assert tags["policygate.decision_id"] == f"audit:{run['run_id']}"
    assert "prod" not in client.get_registered_model("sneaked").aliases
    assert "champion" in client.get_registered_model("kept").aliases  # the gated model is untouched
    code, after = audit(registry, sqlite_url)
    assert code == 0 and [m["name"] for m in after["models"]] == ["kept"]


def test_the_api_answers_the_latest_run_and_the_schedule_runs_in_serve(
    registry: str, sqlite_url: str
) -> None:
    promote(registry, sqlite_url, "served")
    settings = settings_for(registry, sqlite_url, audit_interval_s=0.3)
    with TestClient(create_app(settings)) as api:
        deadline = time.monotonic() + 60
        latest = api.get("/v1/audit")
        while latest.status_code == 404 and time.monotonic() < deadline:
            time.sleep(0.1)
            latest = api.get("/v1/audit")
        assert latest.status_code == 200, latest.text
        body = latest.json()
        assert body["status"] == "clean" and [m["name"] for m in body["models"]] == ["served"]
        assert "documents" not in body
        one = api.get(f"/v1/audit/runs/{body['run_id']}")
        assert one.status_code == 200 and one.json()["run_id"] == body["run_id"]
        missing = api.get(f"/v1/audit/runs/{uuid.uuid4()}")
        assert missing.status_code == 404 and "no audit run" in missing.json()["message"]
        assert api.get("/v1/audit/runs/" + "x" * 65).status_code == 422
        metrics = api.get("/metrics").text
        assert "policygate_audit_models_audited 1.0" in metrics
        assert "policygate_audit_last_run_end_timestamp_seconds" in metrics
        assert 'policygate_audit_runs_total{status="clean"}' in metrics


def test_no_run_yet_is_404_and_bad_input_exits_2(registry: str, sqlite_url: str) -> None:
    with TestClient(create_app(settings_for(registry, sqlite_url))) as api:
        answer = api.get("/v1/audit")
        assert answer.status_code == 404 and "POLICYGATE_AUDIT_INTERVAL_S" in answer.json()["message"]
    assert runner.invoke(app, ["audit", "report", "--db", sqlite_url]).exit_code == 2
    bad = runner.invoke(app, ["audit", "run", "--db", sqlite_url, "--target", "prod"])
    assert bad.exit_code == 2 and "unknown target stage" in bad.output
    bad = runner.invoke(app, ["audit", "run", "--db", sqlite_url, "--platform", "sagemaker"])
    assert bad.exit_code == 2


def test_a_release_decision_made_elsewhere_counts_only_when_collected(registry: str, sqlite_url: str) -> None:
    """A what-if on evidence a caller wrote is never the release decision the audit looks for."""
    version = register(registry, ModelSpec("whatif"))
    settings = settings_for(registry, sqlite_url)
    with open_runtime(settings) as runtime:
        evidence = runtime.service.collect(
            parse(f"mlflow:models:/whatif/{version}"), Target(stage="production")
        )
        supplied = runtime.service.evaluate(evidence)  # origin "supplied"
        assert supplied.outcome == "allow" and supplied.what_if
        MlflowClient(registry).set_registered_model_alias("whatif", "champion", version)
        run = Auditor(runtime.service, settings).run()
    assert [(f.kind, f.reasons) for f in run.findings] == [("bypass", ["AUD-001"])]


def test_a_changed_stored_document_is_never_reused(registry: str, sqlite_url: str) -> None:
    promote(registry, sqlite_url, "stored")
    _, first = audit(registry, sqlite_url)
    from sqlalchemy import create_engine, text

    engine = create_engine(sqlite_url)
    with engine.begin() as conn:  # someone edits the evidence the first run stored
        changed = conn.execute(
            text(
                "UPDATE decision_log SET body = replace(body, 'bob@corp', 'eve@corp') WHERE decision_id = :id"
            ),
            {"id": f"audit:{first['run_id']}"},
        ).rowcount
    engine.dispose()
    assert changed == 1
    code, second = audit(registry, sqlite_url)
    assert second["models"][0]["collected"] is True  # read from MLflow again, not from the edited record
    assert (code, second["findings"]) == (0, [])


def test_what_ifs_never_push_the_release_decision_out_of_the_audit(registry: str, sqlite_url: str) -> None:
    """A `decide` token's 60 what-if allows for a released version leave the audit's finding as it was:
    the release decision is found by an indexed seek for the latest collected allow, not in a window."""
    version = register(registry, ModelSpec("released"), train=True)  # with files (INT-003)
    ref = f"mlflow:models:/released/{version}"
    gated = runner.invoke(
        app, ["check", ref, "-t", "production", "--mlflow-uri", registry, "--db", sqlite_url]
    )
    assert gated.exit_code == 0, gated.output
    MlflowClient(registry).set_registered_model_alias("released", "champion", version)
    settings = settings_for(registry, sqlite_url)
    with open_runtime(settings) as runtime:
        evidence = runtime.service.collect(parse(ref), Target(stage="production")).to_input()
    with TestClient(create_app(settings)) as api:
        for _ in range(60):
            answer = api.post("/v1/evaluate", json={"evidence": evidence})
            assert answer.status_code == 200 and answer.json()["outcome"] == "allow", answer.text
    code, run = audit(registry, sqlite_url)
    assert code == 0 and findings_of(run, "released") == [], run["findings"]
    (model,) = run["models"]
    log = DecisionLog(sqlite_url, create=False)
    try:
        released = log.latest_release(model=[ref], target="production", outcome="allow")
        assert released is not None and model["release_decision"] == released["decision"]["decision_id"]
        assert len(log.query(model=ref, outcome="allow", limit=100)) == 61 and log.verify().ok
    finally:
        log.close()
