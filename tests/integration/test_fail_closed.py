"""Anything that prevents a sound decision denies with outcome "error" and is still recorded."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from policygate.decisions.log import DecisionLog
from policygate.decisions.service import DecisionService
from policygate.engine.errors import EngineError
from policygate.engine.managed import ManagedOpa
from policygate.engine.opa import OpaEngine
from policygate.evidence import EvidenceV1
from tests.support.checkout import REGO, opa_binary


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def engine_for(tmp_path: Path, rego: str) -> OpaEngine:
    """An OPA serving ``rego`` that policygate did not load (as one at POLICYGATE_OPA_URL): none of the
    load checks ran, so what these tests see are the guards every evaluation has."""
    pkg = tmp_path / "policies" / "policygate"
    pkg.mkdir(parents=True)
    (pkg / "main.rego").write_text(rego)
    managed = ManagedOpa(opa_binary(), tmp_path / "policies")
    return OpaEngine(managed.start(), managed=managed)


def decide(
    engine: OpaEngine | None, log: DecisionLog, evidence: dict[str, Any], err: EngineError | None = None
):  # type: ignore[no-untyped-def]
    return DecisionService(engine, log, err).evaluate(EvidenceV1.model_validate(evidence))


def test_unreachable_opa_is_an_error_and_recorded(
    decision_log: DecisionLog, compliant: dict[str, Any]
) -> None:
    engine = OpaEngine(f"http://127.0.0.1:{closed_port()}", timeout_s=1)
    decision = decide(engine, decision_log, compliant)
    assert decision.outcome == "error" and decision.allow is False
    assert decision.reasons[0].id == "ERR-UNREACHABLE" and "OPA unreachable" in decision.reasons[0].message
    assert decision_log.get(decision.decision_id)["decision"]["outcome"] == "error"  # type: ignore[index]


def test_undefined_decision_is_never_allow(
    tmp_path: Path, decision_log: DecisionLog, compliant: dict[str, Any]
) -> None:
    with engine_for(tmp_path, "package policygate\n\nsomething_else := true\n") as engine:
        decision = decide(engine, decision_log, compliant)
    assert decision.outcome == "error" and not decision.allow
    assert decision.reasons[0].id == "ERR-UNDEFINED"


@pytest.mark.parametrize(
    "body",
    [
        'decision := {"allow": "yes", "deny": []}',  # allow must be a boolean
        'decision := {"allow": true}',  # deny missing
        "decision := true",
    ],
)
def test_malformed_decision_is_an_error(
    body: str, tmp_path: Path, decision_log: DecisionLog, compliant: dict[str, Any]
) -> None:
    with engine_for(tmp_path, f"package policygate\n\n{body}\n") as engine:
        decision = decide(engine, decision_log, compliant)
    assert decision.outcome == "error" and not decision.allow
    assert decision.reasons[0].id == "ERR-POLICY-ERROR"


def test_runtime_policy_error_is_an_error(
    tmp_path: Path, decision_log: DecisionLog, compliant: dict[str, Any]
) -> None:
    # Two values for one complete rule: OPA answers 500 eval_conflict_error.
    rego = (
        'package policygate\n\ndecision := {"allow": true, "deny": []} if input.subject\n'
        'decision := {"allow": false, "deny": []} if input.request\n'
    )
    with engine_for(tmp_path, rego) as engine:
        decision = decide(engine, decision_log, compliant)
    assert decision.outcome == "error" and "conflict" in decision.reasons[0].message


def test_allow_with_denials_is_a_deny(
    tmp_path: Path, decision_log: DecisionLog, compliant: dict[str, Any]
) -> None:
    rego = 'package policygate\n\ndecision := {"allow": true, "deny": [{"id": "X-1", "message": "m"}]}\n'
    with engine_for(tmp_path, rego) as engine:
        decision = decide(engine, decision_log, compliant)
    assert decision.outcome == "deny" and not decision.allow and decision.reasons[0].id == "X-1"


def test_policy_that_does_not_compile_fails_to_start(tmp_path: Path) -> None:
    with pytest.raises(EngineError) as info:
        engine_for(tmp_path, "package policygate\n\ndecision := {\n")
    assert info.value.code == "policy_error"


def test_engine_that_never_started_records_errors(
    decision_log: DecisionLog, compliant: dict[str, Any]
) -> None:
    err = EngineError("unreachable", "cannot start OPA (/nonexistent/opa)")
    decision = decide(None, decision_log, compliant, err)
    assert decision.outcome == "error" and decision_log.get(decision.decision_id) is not None


def test_revision_is_a_digest_of_what_opa_holds(opa: OpaEngine, tmp_path: Path) -> None:
    assert opa.policy_revision.startswith("sha256:")
    # OpaEngine.start: the documented entry point (docs/python-api.md), a shim over runtime.engines
    with OpaEngine.start(None, opa_binary(), REGO) as same:
        assert same.policy_revision == opa.policy_revision
    with engine_for(tmp_path, 'package policygate\n\ndecision := {"allow": false, "deny": []}\n') as other:
        assert other.policy_revision != opa.policy_revision


def test_a_builtin_error_is_an_error_never_a_silent_allow(
    tmp_path: Path, decision_log: DecisionLog, compliant: dict[str, Any]
) -> None:
    """Without strict builtin errors the failing to_number would make the deny rule undefined: allow."""
    rego = (
        "package policygate\n\n"
        'decision := {"allow": count(deny) == 0, "deny": [r | some r in deny]}\n\n'
        'deny contains {"id": "XYZ-001", "message": "m"} if to_number(input.subject.name) > 0\n'
    )
    with engine_for(tmp_path, rego) as engine:
        decision = decide(engine, decision_log, compliant)
    assert decision.outcome == "error" and not decision.allow
    [reason] = decision.reasons
    assert reason.id == "ERR-POLICY-ERROR" and "to_number" in reason.message
    assert "main.rego:5" in reason.message, reason.message


def test_a_policy_that_reports_its_own_errors_is_an_error(
    tmp_path: Path, decision_log: DecisionLog, compliant: dict[str, Any]
) -> None:
    """decision.errors (main.rego's own checks, e.g. missing parameters) is never an allow."""
    rego = 'package policygate\n\ndecision := {"allow": true, "deny": [], "errors": ["params missing"]}\n'
    with engine_for(tmp_path, rego) as engine:
        decision = decide(engine, decision_log, compliant)
    assert decision.outcome == "error" and "params missing" in decision.reasons[0].message


def test_the_managed_opa_answers_only_policygate(opa: OpaEngine) -> None:
    """No side door: without the managed OPA's secret a local process can neither query it, nor
    replace its data (waivers, parameters) or policies; policygate's own calls go through."""
    import requests

    doc = {"input": {}}
    assert requests.post(f"{opa.url}/v1/data/policygate/decision", json=doc, timeout=5).status_code == 401
    assert requests.put(f"{opa.url}/v1/data/policygate_waivers", json=[], timeout=5).status_code == 401
    module = "package policygate\n\ndecision := {}\n"
    assert requests.put(f"{opa.url}/v1/policies/evil", data=module, timeout=5).status_code == 401
    wrong = {"Authorization": "Bearer not-the-secret"}
    assert requests.get(f"{opa.url}/v1/policies", headers=wrong, timeout=5).status_code == 401
    assert opa.token and opa.evaluate({})["allow"] is False  # the engine itself is answered
    assert opa.refresh_revision() == opa.policy_revision  # the authorization rule is not policy


def _serving(answer: bytes) -> tuple[Any, str]:
    """A loopback HTTP server that answers every request with ``answer`` (200, JSON)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def test_a_source_answering_nonsense_is_an_error_decision_recorded(
    decision_log: DecisionLog, opa: OpaEngine, sqlite_url: str
) -> None:
    """MLflow answering JSON of the wrong shape: an error decision (exit 2), never a 500 or exit 1."""
    from typer.testing import CliRunner

    from policygate.cli import app
    from policygate.config.tags import TagMapping
    from policygate.evidence import Target
    from policygate.refs import parse
    from policygate.sources.collect import Collector
    from policygate.sources.mlflow import MlflowSource

    server, url = _serving(b'{"model_version": {"name": ["x"], "version": {"v": 1}, "tags": "no"}}')
    try:
        collector = Collector({"mlflow": MlflowSource(url, TagMapping(), 10.0, 0.0)})
        service = DecisionService(opa, decision_log, None, collector)
        decision = service.decide(parse("mlflow:models:/fraud/1"), Target(stage="production"))
        assert decision.outcome == "error" and decision.reasons[0].id == "ERR-SOURCE"
        assert "failed unexpectedly" in decision.reasons[0].message
        assert decision_log.get(decision.decision_id) is not None
        result = CliRunner().invoke(
            app,
            ["check", "mlflow:models:/fraud/1", "-t", "production", "--mlflow-uri", url, "--db", sqlite_url],
        )
        assert result.exit_code == 2 and "ERR-SOURCE" in result.stdout
    finally:
        server.shutdown()


def test_an_opa_answering_an_array_is_an_error_decision(
    decision_log: DecisionLog, compliant: dict[str, Any]
) -> None:
    import asyncio

    server, url = _serving(b"[1, 2, 3]")
    try:
        engine = OpaEngine(url, timeout_s=2)
        decision = decide(engine, decision_log, compliant)
        assert (
            decision.outcome == "error"
            and "something other than a JSON object" in decision.reasons[0].message
        )
        in_loop = asyncio.run(
            DecisionService(engine, decision_log).evaluate_async(EvidenceV1.model_validate(compliant))
        )
        assert in_loop.outcome == "error" and decision_log.get(in_loop.decision_id) is not None
    finally:
        server.shutdown()


def test_a_killed_managed_opa_is_started_again_with_its_waivers(sqlite_url: str) -> None:
    """kill -9 the managed OPA: decisions are errors for a moment, then decide again, waivers back."""
    import os
    import signal
    import time

    from fastapi.testclient import TestClient

    from policygate.api.app import create_app
    from policygate.config import Settings
    from tests.support.checkout import load_example

    settings = Settings(db_url=sqlite_url, policy_dir=REGO, opa_bin=opa_binary(), engine="http")
    with TestClient(create_app(settings)) as client:
        granted = client.post(
            "/v1/waivers",
            json={"rule": "APR-002", "model": "mlflow:models:/fraud-detector/7", "reason": "r",
                  "approved_by": "ciso@example.com", "expires": "7d"},
        )  # fmt: skip
        assert granted.status_code == 201, granted.text
        doc = {"evidence": load_example("APR-002")}
        assert client.post("/v1/evaluate", json=doc).json()["outcome"] == "allow"  # waived
        service = client.app.state.service  # type: ignore[attr-defined]
        old = service.engine.managed.proc
        os.kill(old.pid, signal.SIGKILL)
        old.wait()
        deadline = time.monotonic() + 20
        while True:
            answer = client.post("/v1/evaluate", json=doc).json()
            if answer["outcome"] != "error":
                break
            assert time.monotonic() < deadline, answer
            time.sleep(0.1)
        assert answer["outcome"] == "allow", answer  # the same policy, and the waiver pushed back
        assert service.engine.managed.proc.pid != old.pid
        health = client.get("/healthz").json()
        assert health == {"status": "ok", "opa_restarts": 1}
        # readiness follows within moments (the supervisor marks OPA up once the waivers are back)
        ready = client.get("/readyz")
        while ready.status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
            ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
