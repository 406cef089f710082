"""GET /v1/log/verify: an auditor with a read token checks the record without database credentials;
a tampered SQLite row is named, a cut under a signed checkpoint is named."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from policygate.api.app import create_app
from policygate.auth.principal import parse_scopes
from policygate.auth.tokens import TokenStore
from policygate.config import Settings
from policygate.decisions.checkpoint import create_key, current, sign
from policygate.decisions.checkpoint_dir import write_new
from policygate.decisions.log import DecisionLog
from tests.support.checkout import REGO, opa_binary


def served(sqlite_url: str, **more: Any) -> TestClient:
    settings = Settings(db_url=sqlite_url, policy_dir=REGO, opa_bin=opa_binary(), **more)
    return TestClient(create_app(settings))


@pytest.fixture
def read_token(sqlite_url: str) -> str:
    log = DecisionLog(sqlite_url)
    token = TokenStore(log).create("auditor", parse_scopes("read"), "test")[1]
    log.close()
    return token


@pytest.fixture
def decided(sqlite_url: str, read_token: str, compliant: dict[str, Any]) -> Iterator[list[str]]:
    """Three what-if decisions recorded through the API (decide scope), after the auditor's token."""
    log = DecisionLog(sqlite_url)
    decider = TokenStore(log).create("ci", parse_scopes("decide"), "test")[1]
    log.close()
    with served(sqlite_url, auth_required=True) as client:
        auth = {"Authorization": f"Bearer {decider}"}
        ids = [
            client.post("/v1/evaluate", json={"evidence": compliant}, headers=auth).json()["decision_id"]
            for _ in range(3)
        ]
    yield ids


def test_a_read_token_verifies_an_intact_log(sqlite_url: str, read_token: str, decided: list[str]) -> None:
    with served(sqlite_url, auth_required=True) as client:
        assert client.get("/v1/log/verify").status_code == 401
        answer = client.get("/v1/log/verify", headers={"Authorization": f"Bearer {read_token}"}).json()
    assert answer["ok"] is True and answer["problem"] is None and answer["first_tampered"] is None
    assert answer["records"] == answer["head"]["seq"] >= 5  # two tokens, three decisions
    assert answer["checkpoint"] == {
        "configured": False,
        "ok": None,
        "file": None,
        "size": None,
        "time": None,
        "problem": None,
        "acknowledged": None,
    }


def test_a_tampered_sqlite_row_is_named(sqlite_url: str, read_token: str, decided: list[str]) -> None:
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        seq = conn.execute(
            text("SELECT seq FROM decision_log WHERE decision_id = :i"), {"i": decided[1]}
        ).scalar()
        conn.execute(
            text("UPDATE decision_log SET body = replace(body, '\"allow\"', '\"deny\"') WHERE seq = :s"),
            {"s": seq},
        )
    engine.dispose()
    with served(sqlite_url, auth_required=True) as client:
        resp = client.get("/v1/log/verify", headers={"Authorization": f"Bearer {read_token}"})
    answer = resp.json()
    assert resp.status_code == 200 and answer["ok"] is False
    assert answer["first_tampered"] == {"seq": seq, "id": decided[1], "kind": "decision"}
    assert answer["problem"] == f"record {seq} was changed (hash mismatch)"
    assert answer["records"] == seq


def test_a_deleted_row_is_named(sqlite_url: str, decided: list[str]) -> None:
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        seq = conn.execute(
            text("SELECT seq FROM decision_log WHERE decision_id = :i"), {"i": decided[0]}
        ).scalar()
        conn.execute(text("DELETE FROM decision_log WHERE seq = :s"), {"s": seq})
    engine.dispose()
    with served(sqlite_url) as client:
        answer = client.get("/v1/log/verify").json()
    assert answer["ok"] is False and answer["first_tampered"] == {"seq": seq, "id": None, "kind": None}
    assert f"record {seq} is missing" in answer["problem"]


def test_records_cut_from_the_end_fail_against_the_newest_checkpoint(
    sqlite_url: str, decided: list[str], tmp_path: Path
) -> None:
    key_path, _ = create_key(tmp_path / "policygate.key")
    directory = tmp_path / "checkpoints"
    directory.mkdir()
    settings = {"checkpoint_key": key_path, "checkpoint_dir": directory, "checkpoint_interval_s": 3600}
    from policygate.decisions.checkpoint import load_private

    log = DecisionLog(sqlite_url)
    cp = current(log)
    log.close()
    write_new(directory, cp, sign(cp, load_private(key_path)))
    with served(sqlite_url, **settings) as client:
        before = client.get("/v1/log/verify").json()
    assert before["ok"] is True and before["checkpoint"]["ok"] is True
    # the newest: ours, or the same size signed again by serve's own writer as it started
    assert before["checkpoint"]["size"] == cp.size and before["checkpoint"]["file"] in (
        "latest.txt",
        f"checkpoint-{cp.size}.txt",
    )

    engine = create_engine(sqlite_url)  # the newest record removed: the chain alone still holds
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM decision_log WHERE seq = :s"), {"s": cp.size})
    engine.dispose()
    with served(sqlite_url, **settings) as client:
        after = client.get("/v1/log/verify").json()
    assert after["ok"] is False and after["first_tampered"] is None
    assert after["checkpoint"]["ok"] is False
    assert "1 record(s) were removed from its end" in after["problem"]


def test_verify_is_read_only(sqlite_url: str, decided: list[str]) -> None:
    with served(sqlite_url) as client:
        head = client.get("/v1/log/verify").json()["head"]
        assert client.get("/v1/log/verify").json()["head"] == head
        assert client.post("/v1/log/verify").status_code == 405
