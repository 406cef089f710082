"""API tokens for tests that call the API as a client would."""

from __future__ import annotations

from policygate.auth.principal import parse_scopes
from policygate.auth.tokens import TokenStore
from policygate.decisions.log import DecisionLog


def token(db: str, name: str, scopes: str) -> str:
    """A new API token with these scopes, recorded in the log at ``db``."""
    log = DecisionLog(db)
    try:
        return TokenStore(log).create(name, parse_scopes(scopes), "test")[1]
    finally:
        log.close()


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}
