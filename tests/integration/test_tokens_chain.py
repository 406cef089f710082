"""API tokens live in the chain: a row the chain does not back authenticates nobody, and `log verify`
names it. On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import insert, text, update
from typer.testing import CliRunner

from policygate.api.app import create_app
from policygate.auth.principal import parse_scopes
from policygate.auth.tokens import TokenStore, api_tokens
from policygate.cli import app
from policygate.config import Settings
from policygate.decisions.log import DecisionLog
from tests.support.checkout import REGO, opa_binary

runner = CliRunner()


def verify(url: str) -> tuple[int, str]:
    result = runner.invoke(app, ["log", "verify", "--db", url])
    return result.exit_code, result.stdout


def insert_admin_row(log: DecisionLog, token_id: str, secret: str) -> None:
    """The attack: an admin token row written straight into the table, with a secret of one's own."""
    with log.engine.begin() as conn:
        conn.execute(
            insert(api_tokens).values(
                id=token_id,
                name="mallory",
                secret_sha256=hashlib.sha256(secret.encode()).hexdigest(),
                scopes="admin",
                created_at=datetime.now(UTC),
                created_by="nobody",
            )
        )


def test_a_row_inserted_straight_into_the_table_is_no_token(log_url: str) -> None:
    """Attack: insert an admin token row with a secret of one's own choosing."""
    log = DecisionLog(log_url)
    store = TokenStore(log)
    try:
        _, good = store.create("ci-bot", parse_scopes("decide"), "test")
        assert store.verify(good) is not None
        secret = "s3cret-of-the-attacker"
        insert_admin_row(log, "feedfacecafe", secret)
        assert TokenStore(log).verify(f"pgt_feedfacecafe_{secret}") is None
    finally:
        log.close()
    code, out = verify(log_url)
    assert code == 1 and "token feedfacecafe has no creation record in the chain" in out


def test_clearing_revoked_at_does_not_revive_a_token(log_url: str) -> None:
    log = DecisionLog(log_url)
    store = TokenStore(log)
    try:
        token_id, token = store.create("old-ci", parse_scopes("decide,read"), "test")
        assert store.revoke(token_id, "test") and not store.revoke(token_id, "test")
        with log.engine.begin() as conn:
            conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(revoked_at=None))
        assert TokenStore(log).verify(token) is None
    finally:
        log.close()
    code, out = verify(log_url)
    assert code == 1 and f"token {token_id} was revoked in the chain but its row says it is not" in out


def test_widened_scopes_or_a_swapped_secret_are_caught(log_url: str) -> None:
    log = DecisionLog(log_url)
    store = TokenStore(log)
    try:
        token_id, token = store.create("reader", parse_scopes("read"), "test")
        with log.engine.begin() as conn:
            conn.execute(text("UPDATE api_tokens SET scopes = 'admin' WHERE id = :id"), {"id": token_id})
        assert TokenStore(log).verify(token) is None
    finally:
        log.close()
    code, out = verify(log_url)
    assert code == 1 and "differs from its creation record (name or scopes)" in out


def test_the_api_refuses_a_token_the_chain_does_not_back(sqlite_url: str) -> None:
    log = DecisionLog(sqlite_url)
    secret = "x" * 40
    insert_admin_row(log, "0123456789ab", secret)
    log.close()
    settings = Settings(db_url=sqlite_url, policy_dir=REGO, opa_bin=opa_binary(), auth_required=True)
    with TestClient(create_app(settings)) as client:
        resp = client.get("/v1/decisions", headers={"Authorization": f"Bearer pgt_0123456789ab_{secret}"})
    assert resp.status_code == 401
    assert verify(sqlite_url)[0] == 1
