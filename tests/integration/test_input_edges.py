"""Every bad input is refused cleanly and changes nothing: duplicate keys, control characters and
oversized free text, a subject.ref that is no model reference, a stalled body; an oversized value
from a source is cut and named as a gap instead of filling the log."""

from __future__ import annotations

import asyncio
import copy
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from policygate.api.app import create_app
from policygate.api.limits import JsonBodyCheck
from policygate.demo.seed import ModelSpec, register
from policygate.evidence import EvidenceV1
from policygate.sources.caps import MAX_VALUE_CHARS, cap_values
from tests.support.served import Served


def records(client: TestClient) -> int:
    return int(client.app.state.service.log.verify().records)  # type: ignore[attr-defined]


def test_duplicate_keys_are_refused_naming_the_key(client: TestClient, compliant: dict[str, Any]) -> None:
    twice = client.post(
        "/v1/evaluate",
        content=f'{{"evidence": {{}}, "evidence": {_json(compliant)}}}',
        headers={"content-type": "application/json"},
    )
    assert twice.status_code == 422 and "duplicate key 'evidence'" in twice.json()["message"]
    inner = _json(compliant).replace('"stage": "production"', '"stage": "production", "stage": "staging"', 1)
    nested = client.post(
        "/v1/evaluate", content=f'{{"evidence": {inner}}}', headers={"content-type": "application/json"}
    )
    assert nested.status_code == 422 and "duplicate key 'stage'" in nested.json()["message"]
    assert records(client) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (("request", "requested_by"), "alice@corp\nGRANTED by ciso@corp"),
        (("request", "requested_by"), "a" * 200_000),
        (("request", "target", "environment"), "prod\x1b[2Jeu"),
        (("request", "target", "environment"), "x" * 200_000),
        (("request", "ticket"), "CHG-1\x00"),
        (("subject", "ref"), "mlflow:models:/../x/1"),
        (("subject", "ref"), "mlflow:models:/other-model/7"),
    ],
)
def test_supplied_free_text_and_refs_are_checked(
    client: TestClient, compliant: dict[str, Any], field: tuple[str, ...], value: str
) -> None:
    doc = copy.deepcopy(compliant)
    where = doc
    for part in field[:-1]:
        where = where[part]
    where[field[-1]] = value
    resp = client.post("/v1/evaluate", json={"evidence": doc})
    assert resp.status_code == 422, resp.text[:300]
    assert resp.json()["errors"][0]["field"].startswith("evidence." + ".".join(field[:-1]))
    assert len(resp.text) < 5000 and records(client) == 0


def test_decide_request_requested_by_is_one_line(client: TestClient) -> None:
    ask = {"model": "mlflow:models:/m/1", "target": {"stage": "production"}, "requested_by": "a\r\nb"}
    resp = client.post("/v1/decisions", json=ask)
    assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "requested_by"


def test_a_stalled_body_is_refused_and_its_connection_freed(tmp_path: Path) -> None:
    env = {"POLICYGATE_DB_URL": f"sqlite:///{tmp_path}/d.db", "POLICYGATE_BODY_TIMEOUT_S": "1"}
    with Served(env) as server:
        stalled = []
        for _ in range(50):  # many clients that announce a body and never send it
            s = socket.create_connection(("127.0.0.1", server.port))
            s.sendall(
                b"POST /v1/evaluate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000\r\n\r\n{"
            )
            stalled.append(s)
        started = time.monotonic()
        s = stalled[0]
        s.settimeout(10)
        answer = b""
        while chunk := s.recv(4096):  # until the server closes the connection
            answer += chunk
        waited = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408") and b"not received within 1 s" in answer, answer
        assert waited < 5
        for s in stalled:
            s.close()


def test_the_body_timeout_applies_to_the_whole_body_not_each_chunk() -> None:
    """A client that sends a byte now and then (slowloris) is cut off at the deadline all the same."""
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the route must not be reached")

    async def trickle() -> dict[str, Any]:
        await asyncio.sleep(0.2)
        return {"type": "http.request", "body": b" ", "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    check = JsonBodyCheck(app, timeout_s=0.5)
    started = time.monotonic()
    asyncio.run(check({"type": "http", "method": "POST", "headers": []}, trickle, send))
    assert sent[0]["status"] == 408 and time.monotonic() - started < 1.0


def test_an_oversized_source_value_is_cut_and_named_as_a_gap(client: TestClient, mlflow_server: str) -> None:
    """100,000 characters in a version tag (the MLflow server's own maximum) and 40 MB from a source
    that allows more: the record holds at most MAX_VALUE_CHARS of either."""
    spec = ModelSpec(f"big-{uuid.uuid4().hex[:6]}")
    version = register(mlflow_server, spec)
    MlflowClient(mlflow_server).set_model_version_tag(spec.name, version, "notes", "n" * 100_000)
    settings = client.app.state.settings  # type: ignore[attr-defined]
    with TestClient(create_app(settings.model_copy(update={"mlflow_uri": mlflow_server}))) as live:
        ask = {"model": f"mlflow:models:/{spec.name}/{version}", "target": {"stage": "production"}}
        decision = live.post("/v1/decisions", json=ask).json()
        assert decision["outcome"] == "allow", decision  # a cut tag no rule requires denies nothing
        stored = live.app.state.service.log.get(decision["decision_id"])  # type: ignore[attr-defined]
        assert "subject.tags.notes" in stored["evidence"]["collection"]["gaps"]
        assert len(stored["evidence"]["subject"]["tags"]["notes"]) == MAX_VALUE_CHARS
        assert len(_json(stored)) < 2 * MAX_VALUE_CHARS


def test_cap_values_cuts_40_mb_and_names_required_fields_as_gaps(compliant: dict[str, Any]) -> None:
    doc = copy.deepcopy(compliant)
    doc["ownership"]["owner"] = "o" * (40 * 1024 * 1024)
    doc["subject"]["tags"]["k" * 2000] = "long key"
    evidence = EvidenceV1.model_validate(doc)
    capped = cap_values(evidence)
    assert len(capped.ownership.owner or "") == MAX_VALUE_CHARS
    assert {"ownership.owner", "subject.tags"} <= set(capped.collection.gaps)
    assert "k" * 2000 not in capped.subject.tags
    plain = EvidenceV1.model_validate(compliant)
    assert cap_values(plain) is plain  # nothing to cut: the same object, no copy


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


def test_waiver_and_approval_text_refuses_control_characters(client: TestClient, sqlite_url: str) -> None:
    from policygate.auth.principal import parse_scopes
    from policygate.auth.tokens import TokenStore
    from policygate.decisions.log import DecisionLog

    waiver = {
        "rule": "APR-001",
        "model": "mlflow:models:/m/1",
        "reason": "ok\x1b[2J",
        "approved_by": "c",
        "expires": "1d",
    }
    refused = client.post("/v1/waivers", json=waiver)
    assert refused.status_code == 422 and "control characters" in refused.json()["message"]
    log = DecisionLog(sqlite_url)
    approver = TokenStore(log).create("carol@corp", parse_scopes("approve"), "test")[1]
    log.close()
    before = records(client)
    ask = {"model": "mlflow:models:/m/1", "stage": "production", "comment": "fine\x00"}
    answer = client.post("/v1/approvals", json=ask, headers={"Authorization": f"Bearer {approver}"})
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "comment"
    assert records(client) == before == 1  # the token's creation only: nothing else recorded
