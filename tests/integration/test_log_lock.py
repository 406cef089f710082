"""PostgreSQL: the chain's advisory lock is the log's own (per database and schema) and waited on
with lock_timeout: a session holding it makes a decision answer 503 with Retry-After, never hang,
and /readyz names the wait."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from policygate.decisions.group_commit import pg_lock_key
from policygate.decisions.log import DecisionLog, LogError
from tests.support.checkout import load_example
from tests.support.served import Served

LEGACY_KEY = 0x706F6C6761746531  # the one fixed key every policygate log used before


@contextmanager
def holding(url: str, key: int) -> Iterator[None]:
    """Another session (any role may call pg_advisory_lock) holds ``key`` until the block ends."""
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()
    engine.dispose()


def log_key(url: str) -> int:
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        database, schema = conn.execute(text("SELECT current_database(), current_schema()")).one()
    engine.dispose()
    return pg_lock_key(database, schema)


def evaluate(base: str) -> requests.Response:
    return requests.post(f"{base}/v1/evaluate", json={"evidence": load_example("compliant")}, timeout=15)


def test_a_held_lock_is_503_with_retry_after_within_the_lock_timeout_and_named_in_readyz(
    pg_url: str,
) -> None:
    DecisionLog(pg_url).close()  # the schema exists before the service starts
    env = {"POLICYGATE_DB_URL": pg_url, "POLICYGATE_DB_LOCK_TIMEOUT_S": "1"}
    with Served(env) as server:
        assert evaluate(server.base).status_code == 200
        with holding(pg_url, LEGACY_KEY):  # the old global key no longer stalls this log
            started = time.monotonic()
            assert evaluate(server.base).status_code == 200
            assert time.monotonic() - started < 1.0
        with holding(pg_url, log_key(pg_url)):
            started = time.monotonic()
            answer = evaluate(server.base)
            waited = time.monotonic() - started
            assert answer.status_code == 503, answer.text
            assert answer.headers.get("Retry-After") and "append lock" in answer.json()["message"]
            assert 0.9 <= waited < 5.0  # within the lock timeout (1 s), not a hang
            time.sleep(1.1)  # past /readyz's one-second cache
            ready = requests.get(f"{server.base}/readyz", timeout=15)
            assert ready.status_code == 503
            assert "append lock" in ready.json()["problems"]["decision_log"]
        time.sleep(1.1)
        assert requests.get(f"{server.base}/readyz", timeout=15).status_code == 200
        assert evaluate(server.base).status_code == 200


def test_an_append_fails_within_the_lock_timeout_and_another_logs_lock_never_stalls_it(
    pg_url: str,
) -> None:
    log = DecisionLog(pg_url, lock_timeout_s=1)
    try:
        with holding(pg_url, pg_lock_key("policygate", "another_schema")):  # another log's writer
            started = time.monotonic()
            log.append("decision", "d1", {"decision": {"outcome": "allow"}}, outcome="allow")
            assert time.monotonic() - started < 1.0
        with holding(pg_url, log_key(pg_url)):
            started = time.monotonic()
            with pytest.raises(LogError, match="append lock"):
                log.append("decision", "d2", {"decision": {"outcome": "allow"}}, outcome="allow")
            assert time.monotonic() - started < 3.0
        log.append("decision", "d3", {"decision": {"outcome": "allow"}}, outcome="allow")  # free again
        assert log.verify().ok and log.head()[0] == 2
    finally:
        log.close()
