"""The HTTP API against the real OPA: evaluate, read back, refuse bad input without side effects."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient

from policygate.api.app import create_app
from policygate.config import Settings


def count(client: TestClient) -> int:
    log = client.app.state.service.log  # type: ignore[attr-defined]
    return int(log.verify().records)


def test_evaluate_then_read_back(client: TestClient, compliant: dict[str, Any]) -> None:
    resp = client.post("/v1/evaluate", json={"evidence": compliant})
    assert resp.status_code == 200
    decision = resp.json()
    assert decision["outcome"] == "allow" and decision["allow"] is True
    again = client.get(f"/v1/decisions/{decision['decision_id']}")
    assert again.status_code == 200 and again.json() == decision


def test_deny_is_answered_with_reasons(client: TestClient, compliant: dict[str, Any]) -> None:
    compliant["lineage"]["code"]["commit"] = None
    decision = client.post("/v1/evaluate", json={"evidence": compliant}).json()
    assert decision["outcome"] == "deny" and [r["id"] for r in decision["reasons"]] == ["LIN-004"]


def test_schema_violation_is_422_naming_the_field(client: TestClient, compliant: dict[str, Any]) -> None:
    compliant["request"]["target"]["stage"] = "prod"
    resp = client.post("/v1/evaluate", json={"evidence": compliant})
    assert resp.status_code == 422
    assert resp.json()["message"].startswith("evidence.request.target.stage")
    assert count(client) == 0


def test_invalid_json_is_422(client: TestClient) -> None:
    resp = client.post("/v1/evaluate", content=b"{nope", headers={"content-type": "application/json"})
    assert resp.status_code == 422 and resp.json()["error"] == "invalid_request"
    assert count(client) == 0


def test_oversized_body_is_413(client: TestClient, compliant: dict[str, Any]) -> None:
    compliant["subject"]["tags"] = {"padding": "x" * (1024 * 1024)}
    resp = client.post("/v1/evaluate", json={"evidence": compliant})
    assert resp.status_code == 413 and "exceeds" in resp.json()["message"]
    assert count(client) == 0


def test_oversized_chunked_body_is_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"evidence": {"subject": {"tags": {"p": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}}}}'

    resp = client.post("/v1/evaluate", content=chunks(), headers={"content-type": "application/json"})
    assert resp.status_code == 413
    assert count(client) == 0


def test_unknown_decision_is_404(client: TestClient) -> None:
    assert client.get("/v1/decisions/does-not-exist").status_code == 404


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "opa_restarts": 0}
    ready = client.get("/readyz")
    checks = ready.json()["checks"]
    assert ready.status_code == 200 and all(checks.values())
    assert {"opa", "decision_log"} <= set(checks) <= {"opa", "decision_log", "source:mlflow"}


def test_unreachable_opa_answers_error_and_not_ready(sqlite_url: str, compliant: dict[str, Any]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(db_url=sqlite_url, opa_url=f"http://127.0.0.1:{port}", opa_timeout_s=1)
    with TestClient(create_app(settings)) as client:
        decision = client.post("/v1/evaluate", json={"evidence": compliant}).json()
        assert decision["outcome"] == "error" and decision["allow"] is False
        assert client.get("/readyz").status_code == 503
        assert count(client) == 1
        assert (
            json.loads(json.dumps(client.get(f"/v1/decisions/{decision['decision_id']}").json()))["outcome"]
            == "error"
        )
