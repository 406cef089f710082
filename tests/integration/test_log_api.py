"""Query routes over the log on SQLite and PostgreSQL: list with keyset pages, and a model's record."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from policygate.api.app import create_app
from policygate.config import Settings
from policygate.evidence import EvidenceV1
from tests.support.checkout import REGO, load_example, opa_binary

REF = "mlflow:models:/fraud-detector/7"


@pytest.fixture
def client(log_url: str) -> Iterator[TestClient]:
    settings = Settings(db_url=log_url, policy_dir=REGO, opa_bin=opa_binary())
    with TestClient(create_app(settings)) as c:
        yield c


def evaluate(client: TestClient, evidence: dict[str, Any]) -> dict[str, Any]:
    """A release decision on this evidence, as `/v1/decisions` records one once it has collected it
    (the service's own path; collecting from a platform is tested with the sources)."""
    service = client.app.state.service  # type: ignore[attr-defined]
    decision = service.evaluate(EvidenceV1.model_validate(evidence), origin="collected")
    return dict(decision.model_dump(mode="json"))


@pytest.fixture
def history(client: TestClient) -> list[dict[str, Any]]:
    """Seven real decisions: fraud-detector/7 to production and staging, and churn/2."""
    compliant = load_example("compliant")
    staging = copy.deepcopy(compliant)
    staging["request"]["target"] = {"stage": "staging", "environment": "stg"}
    churn = copy.deepcopy(compliant)
    churn["subject"].update(name="churn", version="2", ref="mlflow:models:/churn/2")
    docs = [compliant, load_example("APR-002"), staging, churn, compliant, load_example("LIN-004"), churn]
    return [evaluate(client, d) for d in docs]


def ids(resp: Any) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [d["decision_id"] for d in resp.json()["decisions"]]


def test_list_filters(client: TestClient, history: list[dict[str, Any]]) -> None:
    newest_first = [d["decision_id"] for d in reversed(history)]
    assert ids(client.get("/v1/decisions")) == newest_first
    fraud = [d["decision_id"] for d in reversed(history) if d["subject"]["ref"] == REF]
    assert ids(client.get("/v1/decisions", params={"model": REF})) == fraud
    assert ids(client.get("/v1/decisions", params={"model": "mlflow:models:/fraud-detector/007"})) == fraud
    denied = ids(client.get("/v1/decisions", params={"model": REF, "outcome": "deny"}))
    assert denied == [history[5]["decision_id"], history[1]["decision_id"]]
    assert ids(client.get("/v1/decisions", params={"target": "staging"})) == [history[2]["decision_id"]]


def test_list_since_until(client: TestClient, history: list[dict[str, Any]]) -> None:
    log = client.app.state.service.log  # type: ignore[attr-defined]
    at = [log.get(d["decision_id"])["recorded_at"] for d in history]
    got = ids(client.get("/v1/decisions", params={"since": at[2], "until": at[5]}))
    assert got == [history[i]["decision_id"] for i in (4, 3, 2)]


def test_list_keyset_pages_cover_everything_once(client: TestClient, history: list[dict[str, Any]]) -> None:
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 3}
    pages = 0
    while True:
        body = client.get("/v1/decisions", params=params).json()
        seen += [d["decision_id"] for d in body["decisions"]]
        pages += 1
        if not body["next_cursor"]:
            break
        params["cursor"] = body["next_cursor"]
    assert seen == [d["decision_id"] for d in reversed(history)] and pages == 3
    exact = client.get("/v1/decisions", params={"limit": 7}).json()
    assert exact["next_cursor"] is None  # no empty last page when the count divides evenly


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"model": "fraud"}, "model"),
        ({"outcome": "maybe"}, "outcome"),
        ({"target": "prod"}, "target"),
        ({"since": "last week"}, "since"),
        ({"since": "2026-12-01T00:00:00Z", "until": "2026-11-01T00:00:00Z"}, "since"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "OTk5OTk5OTk5OTk5OTk5OTk5OTk5OQ=="}, "cursor"),  # 99999999999999999999999999
    ],
)
def test_list_bad_input_is_422_naming_the_parameter(
    client: TestClient, params: dict[str, Any], field: str
) -> None:
    resp = client.get("/v1/decisions", params=params)
    assert resp.status_code == 422, resp.text
    assert field in resp.text


def test_model_record_answers_the_governance_questions(
    client: TestClient, history: list[dict[str, Any]]
) -> None:
    resp = client.get(f"/v1/models/{REF}/record")
    assert resp.status_code == 200, resp.text
    record = resp.json()
    assert record["model"] == REF
    assert record["owner"] == "alice@example.com" and record["risk_tier"] == "medium"  # who owns it
    production = record["latest_decisions"]["production"]
    assert production["decision_id"] == history[5]["decision_id"]  # what was decided, latest per target
    assert production["outcome"] == "deny" and production["reasons"] == ["LIN-004"]
    assert production["policy_revision"] == history[5]["policy_revision"]  # which policy decided
    assert production["lineage"]["run"]["id"] == "4f2a9c1e7b3d4e5f8a6b0c1d2e3f4a5b"  # on which lineage
    assert record["latest_decisions"]["staging"]["outcome"] == "allow"
    assert record["latest_evidence"]["decision_id"] == history[5]["decision_id"]
    assert record["latest_evidence"]["evidence"]["schema"] == "policygate.evidence/v1"
    assert {a["by"] for a in record["approvals"]} >= {"bob@example.com", "dave@example.com"}
    assert record["decisions"] == {"total": 5, "allow": 3, "deny": 2, "error": 0}
    assert [h["decision_id"] for h in record["history"]] == [
        history[i]["decision_id"] for i in (5, 4, 2, 1, 0)
    ]


def test_a_what_if_is_in_the_history_but_never_the_release_decision(
    client: TestClient, history: list[dict[str, Any]]
) -> None:
    """Attack: POST /v1/evaluate with compliant evidence the caller wrote, naming a real model."""
    doc = load_example("compliant")
    doc["ownership"]["owner"] = "mallory@example.com"  # and it rewrites who owns the model
    doc["approvals"][0]["by"] = "mallory-friend@example.com"
    doc["identities"]["owner"]["id"] = "mallory@example.com"  # and what the directory says of them
    doc["identities"]["approvers"][0]["id"] = "mallory-friend@example.com"
    what_if = client.post("/v1/evaluate", json={"evidence": doc}).json()
    assert what_if["outcome"] == "allow" and what_if["evidence_origin"] == "supplied"
    record = client.get(f"/v1/models/{REF}/record").json()
    assert record["owner"] == "alice@example.com"  # the record is made of collected evidence only
    assert "mallory-friend@example.com" not in {a["by"] for a in record["approvals"]}
    assert record["latest_evidence"]["decision_id"] == history[5]["decision_id"]
    assert record["latest_decisions"]["production"]["decision_id"] == history[5]["decision_id"]  # still
    assert record["latest_decisions"]["production"]["outcome"] == "deny"
    newest = record["history"][0]
    assert newest["decision_id"] == what_if["decision_id"] and newest["evidence_origin"] == "supplied"


def test_model_record_accepts_an_encoded_ref_and_a_history_limit(
    client: TestClient, history: list[dict[str, Any]]
) -> None:
    resp = client.get(f"/v1/models/{quote(REF, safe='')}/record", params={"limit": 2})
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["history"]) == 2 and resp.json()["history_complete"] is False


def test_model_record_unknown_is_404_and_malformed_is_422(
    client: TestClient, history: list[dict[str, Any]]
) -> None:
    missing = client.get("/v1/models/mlflow:models:/nobody/1/record")
    assert missing.status_code == 404 and "nobody" in missing.text
    malformed = client.get("/v1/models/not a ref/record")
    assert malformed.status_code == 422 and "malformed model reference" in malformed.text
    assert client.get(f"/v1/models/{REF}/record", params={"limit": 0}).status_code == 422


def test_an_alias_is_resolved_through_mlflow_for_the_record_route_and_the_console(
    mlflow_server: str, sqlite_url: str
) -> None:
    """GET /v1/models/NAME@ALIAS/record and the console's search answer with the version MLflow's
    alias points at now, and say so; decisions are recorded under versions, never aliases."""
    import uuid

    from mlflow.tracking import MlflowClient

    from policygate.demo.seed import ModelSpec, register
    from policygate.evidence import Target
    from policygate.refs import parse

    name = f"api-alias-{uuid.uuid4().hex[:6]}"
    alias = f"mlflow:models:/{name}@champion"
    settings = Settings(db_url=sqlite_url, policy_dir=REGO, opa_bin=opa_binary(), mlflow_uri=mlflow_server)
    with TestClient(create_app(settings)) as client:
        service = client.app.state.service  # type: ignore[attr-defined]
        first = register(mlflow_server, ModelSpec(name, alias="champion"))
        service.decide(parse(alias), Target(stage="production"), "ci")
        second = register(mlflow_server, ModelSpec(name))
        service.decide(parse(f"mlflow:models:/{name}/{second}"), Target(stage="production"), "ci")
        record = client.get(f"/v1/models/{quote(alias, safe='')}/record")
        assert record.status_code == 200, record.text
        assert record.json()["model"] == f"mlflow:models:/{name}/{first}"
        assert record.json()["alias"] == {
            "alias": alias,
            "ref": f"mlflow:models:/{name}/{first}",
            "via": "source",
            "note": "resolved through MLflow",
        }
        MlflowClient(mlflow_server).set_registered_model_alias(name, "champion", second)
        assert client.get(f"/v1/models/{alias}/record").json()["model"] == f"mlflow:models:/{name}/{second}"
        page = client.get("/ui", params={"q": alias})  # the search follows the alias to its version's page
        assert page.status_code == 200, page.text
        assert f"mlflow:models:/{name}/{second}" in page.text and "resolved through MLflow" in page.text
