"""Honest health: /readyz names what is wrong (OPA, a log that cannot be written, a source), a database
outage is 503 on every route, the managed OPA's output reaches the service log while it runs, and
a managed OPA that will not start is retried with backoff."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from policygate.api.app import create_app
from policygate.config import Settings
from policygate.demo.seed import ModelSpec, register
from policygate.engine.errors import EngineError
from policygate.engine.managed import ManagedOpa, OutputDrain
from policygate.engine.opa import OpaEngine
from policygate.engine.supervisor import OpaSupervisor
from tests.support.checkout import REGO, load_example, opa_binary
from tests.support.tcp_proxy import TcpProxy


def client_for(**overrides: Any) -> TestClient:
    settings = Settings(**{"policy_dir": REGO, "opa_bin": opa_binary(), **overrides})
    return TestClient(create_app(settings))


@contextlib.contextmanager
def immutable(*paths: Path) -> Iterator[None]:
    """Files no one, root included, may write (chattr +i): a read-only log."""
    present = [str(p) for p in paths if p.exists()]
    subprocess.run(["chattr", "+i", *present], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *present], check=True)


def test_readyz_is_503_naming_a_log_that_cannot_be_written(tmp_path: Path) -> None:
    db = tmp_path / "decisions.db"
    with client_for(db_url=f"sqlite:///{db}") as client:
        doc = {"evidence": load_example("compliant")}
        assert client.post("/v1/evaluate", json=doc).status_code == 200
        assert client.get("/readyz").status_code == 200
        time.sleep(1.1)  # the write check answers from memory for a second
        with immutable(db, db.with_name("decisions.db-wal")):
            refused = client.post("/v1/evaluate", json=doc)
            assert refused.status_code == 503 and refused.json()["error"] == "decision_log_unavailable"
            ready = client.get("/readyz")
            body = ready.json()
            assert ready.status_code == 503 and body["checks"]["decision_log"] is False, body
            assert body["checks"]["opa"] is True and "cannot write" in body["problems"]["decision_log"]
            assert client.get("/v1/decisions").status_code == 200  # reading still works
        time.sleep(1.1)
        assert client.get("/readyz").status_code == 200
        again = client.post("/v1/evaluate", json=doc)
        assert again.status_code == 200, again.text


def test_a_database_outage_is_503_on_every_route_and_readyz_names_it(pg_url: str, mlflow_server: str) -> None:
    url = make_url(pg_url)
    spec = ModelSpec(f"outage-{uuid.uuid4().hex[:6]}")
    ref = f"mlflow:models:/{spec.name}/{register(mlflow_server, spec)}"
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        with client_for(db_url=proxied, mlflow_uri=mlflow_server) as client:
            ask = {"model": ref, "target": {"stage": "production"}}
            assert client.post("/v1/decisions", json=ask).json()["outcome"] == "allow"
            time.sleep(1.1)
            proxy.cut()  # PostgreSQL goes away mid-run
            calls = [
                client.post("/v1/decisions", json=ask),
                client.post("/v1/evaluate", json={"evidence": load_example("compliant")}),
                client.get("/v1/decisions"),
                client.get(f"/v1/models/{ref}/record"),
                client.post(
                    "/v1/waivers",
                    json={
                        "rule": "APR-001",
                        "model": ref,
                        "reason": "r",
                        "approved_by": "c",
                        "expires": "1d",
                    },
                ),
                client.get("/v1/waivers"),
            ]
            for resp in calls:
                assert resp.status_code == 503, (resp.request.url, resp.status_code, resp.text)
                assert resp.json()["error"] == "decision_log_unavailable" and "Traceback" not in resp.text
            ready = client.get("/readyz").json()
            assert ready["ready"] is False and ready["checks"]["decision_log"] is False
            assert ready["checks"]["source:mlflow"] is True  # the others are named as fine
            proxy.restore()
            time.sleep(1.1)
            assert client.get("/readyz").status_code == 200
            assert client.post("/v1/decisions", json=ask).json()["outcome"] == "allow"


def test_readyz_names_a_source_that_does_not_answer(tmp_path: Path) -> None:
    with client_for(db_url=f"sqlite:///{tmp_path}/d.db", mlflow_uri="http://127.0.0.1:9") as client:
        ready = client.get("/readyz")
        body = ready.json()
        assert ready.status_code == 503 and body["checks"]["source:mlflow"] is False
        assert "does not answer" in body["problems"]["source:mlflow"]
        assert body["checks"]["opa"] and body["checks"]["decision_log"]


def test_readyz_names_opa_while_the_managed_opa_is_down(tmp_path: Path) -> None:
    with client_for(db_url=f"sqlite:///{tmp_path}/d.db", engine="http") as client:
        service = client.app.state.service  # type: ignore[attr-defined]
        supervisor = client.app.state.runtime.supervisor  # type: ignore[attr-defined]
        supervisor.stop()  # hold the restart, to look at the moment in between
        service.engine.managed.proc.kill()
        service.engine.managed.proc.wait()
        down = client.get("/readyz")
        assert down.status_code == 503 and down.json()["checks"]["opa"] is False
        assert "does not answer" in down.json()["problems"]["opa"]
        assert supervisor.check() is True  # brought back
        assert client.get("/readyz").status_code == 200


def test_the_managed_opas_output_reaches_the_service_log_while_it_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    proc = subprocess.Popen(
        ["sh", "-c", """echo 'opa: first line'; echo '{"level":"error","msg":"x"}' >&2; sleep 30"""],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        with caplog.at_level(logging.INFO, logger="policygate.opa"):
            drain = OutputDrain(proc)
            deadline = time.monotonic() + 5
            while len(caplog.records) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert proc.poll() is None  # still running: read as it comes, not when it exits
            seen = [(r.levelname, r.getMessage()) for r in caplog.records]
            assert seen == [("INFO", "opa: first line"), ("ERROR", '{"level":"error","msg":"x"}')]
    finally:
        proc.kill()
        proc.wait()
    assert drain.tail() == 'opa: first line\n{"level":"error","msg":"x"}'


def test_a_managed_opa_that_will_not_start_is_retried_with_backoff(tmp_path: Path) -> None:
    now = [100.0]
    managed = ManagedOpa(opa_binary(), REGO)
    managed.start()
    engine = OpaEngine(managed.url, managed=managed)
    supervisor = OpaSupervisor(engine, check_s=0.5, clock=lambda: now[0])
    attempts: list[float] = []
    try:
        managed.binary = str(tmp_path / "no-opa-here")  # the binary went away: every start fails
        assert managed.proc is not None
        managed.proc.kill()
        managed.proc.wait()
        original = managed.restart

        def counted() -> str:
            attempts.append(now[0])
            return original()

        managed.restart = counted  # type: ignore[method-assign]
        for _ in range(80):  # 40 s of checks every 0.5 s
            supervisor.check()
            now[0] += 0.5
        gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
        assert gaps == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0], gaps
        assert supervisor.down_for() == pytest.approx(40.0)
        with pytest.raises(EngineError):
            engine.evaluate(load_example("compliant"))
        managed.binary = opa_binary()  # back: the next attempt brings it up
        now[0] = attempts[-1] + 10
        assert supervisor.check() is True and supervisor.down_for() == 0
        assert engine.evaluate(load_example("compliant"))["allow"] is True
    finally:
        managed.stop()


def test_metrics_count_what_happened(tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    with client_for(
        db_url=f"sqlite:///{tmp_path}/d.db", mlflow_webhook_secret="s", auth_failures_per_minute=6
    ) as client:
        for name in ("compliant", "compliant", "APR-002"):
            assert client.post("/v1/evaluate", json={"evidence": load_example(name)}).status_code == 200
        client.post("/v1/webhooks/mlflow", content=b"{}", headers={"x-mlflow-signature": "v1,forged"})
        for _ in range(3):  # a burst of one failure, then refused
            client.get("/v1/decisions", headers={"Authorization": "Bearer pgt_no.such"})
        scraped = client.get("/metrics")
        assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(scraped.text)
        for s in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    target = {"target": "production", "origin": "supplied"}
    assert value("policygate_decisions_total", outcome="allow", **target) == 2
    assert value("policygate_decisions_total", outcome="deny", **target) == 1
    assert value("policygate_rule_findings_total", rule="APR-002", kind="deny") == 1
    assert value("policygate_evaluate_seconds_count") == 3
    assert value("policygate_log_append_seconds_count") == 3
    assert value("policygate_webhook_deliveries_total", source="mlflow", result="refused") == 1
    assert value("policygate_rate_limited_total", reason="failed_auth") >= 1
    assert value("policygate_opa_restarts") == 0 and value("policygate_log_queue_depth") == 0
