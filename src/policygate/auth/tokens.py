"""API tokens: shown once, stored only as a SHA-256 hash; every change is also a record in the log's chain."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from policygate.auth.principal import Principal
from policygate.decisions.log import DecisionLog, LogError
from policygate.decisions.schema import api_tokens

PREFIX = "pgt"
CACHE_TTL_S = 5.0  # a revoked token stops working within this many seconds on every replica


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    scopes: list[str]
    created_at: str
    created_by: str | None
    revoked: bool


def _sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def created_id(token_id: str) -> str:
    return f"token:{token_id}:created"


def revoked_id(token_id: str) -> str:
    return f"token:{token_id}:revoked"


def row_problem(row: Any, log: DecisionLog) -> str | None:
    """Why a token row is not what the chain says (None: it is). A row needs its creation record
    (same name and scopes, and the same secret hash when the record has one: records written before
    policygate kept it have none) and, once revoked in the chain, a ``revoked_at``."""
    created = ((log.get(created_id(row.id)) or {}).get("token")) or {}
    if not created:
        return f"token {row.id} has no creation record in the chain"
    if created.get("name") != row.name or ",".join(created.get("scopes") or []) != row.scopes:
        return f"token {row.id} differs from its creation record (name or scopes)"
    recorded_hash = created.get("secret_sha256")
    if recorded_hash is not None and not hmac.compare_digest(str(recorded_hash), row.secret_sha256):
        return f"token {row.id} differs from its creation record (secret)"
    if row.revoked_at is None and log.has_id_prefix(revoked_id(row.id)):  # also the older token:ID:revoked:NS
        return f"token {row.id} was revoked in the chain but its row says it is not"
    return None


def table_problems(log: DecisionLog) -> list[str]:
    """Every api_tokens row checked against the chain (``log verify``)."""
    with log.engine.connect() as conn:
        rows = conn.execute(select(api_tokens).order_by(api_tokens.c.id)).all()
    return [p for p in (row_problem(r, log) for r in rows) if p is not None]


def split_token(token: str) -> tuple[str, str] | None:
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


class TokenStore:
    def __init__(self, log: DecisionLog, clock: Callable[[], float] = time.monotonic) -> None:
        self.log = log
        self.clock = clock
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def create(self, name: str, scopes: frozenset[str], created_by: str) -> tuple[str, str]:
        """Returns (token id, the token). The token is not stored and cannot be shown again.

        The chain record comes first and carries what the row must match (name, scopes, the secret's
        hash): a row without it, or that differs from it, authenticates nobody. So a failure between
        the two writes leaves a token that does not work, never one that works unrecorded."""
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        record = {
            "id": token_id,
            "name": name,
            "scopes": sorted(scopes),
            "secret_sha256": _sha(secret),
            "action": "created",
            "by": created_by,
        }
        self.log.append("token", created_id(token_id), {"token": record})
        try:
            with self.log.engine.begin() as conn:
                conn.execute(
                    insert(api_tokens).values(
                        id=token_id,
                        name=name,
                        secret_sha256=record["secret_sha256"],
                        scopes=",".join(sorted(scopes)),
                        created_at=now,
                        created_by=created_by,
                    )
                )
        except SQLAlchemyError as exc:
            raise LogError(f"could not store token: {type(exc).__name__}") from exc
        return token_id, f"{PREFIX}_{token_id}_{secret}"

    def list(self) -> list[TokenInfo]:
        with self.log.engine.connect() as conn:
            rows = conn.execute(select(api_tokens).order_by(api_tokens.c.created_at)).all()
        return [
            TokenInfo(
                r.id,
                r.name,
                r.scopes.split(","),
                r.created_at.isoformat(),
                r.created_by,
                r.revoked_at is not None,
            )
            for r in rows
        ]

    def revoke(self, token_id: str, by: str) -> bool:
        """Revoke a token: the revocation record first (it alone stops the token), then the row."""
        with self.log.engine.connect() as conn:
            row = conn.execute(select(api_tokens.c.revoked_at).where(api_tokens.c.id == token_id)).first()
        if row is None or row.revoked_at is not None or self.log.has_id_prefix(revoked_id(token_id)):
            return False
        self.log.append(
            "token", revoked_id(token_id), {"token": {"id": token_id, "action": "revoked", "by": by}}
        )
        with self.log.engine.begin() as conn:
            conn.execute(
                update(api_tokens)
                .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        with self._lock:
            self._cache.clear()
        return True

    def cached(self, token: str) -> tuple[bool, Principal | None]:
        """(True, the answer) when :meth:`verify` answered for this token less than CACHE_TTL_S ago;
        (False, None) when only the database can tell. Never blocks on the database."""
        return self._hit(_sha(token))

    def _hit(self, key: str) -> tuple[bool, Principal | None]:
        hit = self._cache.get(key)  # one dict read: atomic under the GIL
        if hit and hit[0] > self.clock():
            return True, hit[1]
        return False, None

    def verify(self, token: str) -> Principal | None:
        parsed = split_token(token)
        if parsed is None:
            return None
        token_id, secret = parsed
        key = _sha(token)
        known, principal = self._hit(key)
        if known:
            return principal
        now = self.clock()
        with self.log.engine.connect() as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).first()
        principal = None
        if (
            row is not None
            and row.revoked_at is None
            and hmac.compare_digest(row.secret_sha256, _sha(secret))
            and row_problem(row, self.log) is None
        ):
            principal = Principal(row.name, frozenset(row.scopes.split(",")), "token")
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now + CACHE_TTL_S, principal)
        return principal
