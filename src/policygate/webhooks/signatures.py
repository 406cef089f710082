"""Verify MLflow webhook signatures: ``v1,`` + base64 HMAC-SHA256 of ``{delivery_id}.{timestamp}.{body}``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from policygate.errors import PolicygateError


class SignatureError(PolicygateError):
    """Missing or wrong signature (HTTP 401)."""


class StaleDelivery(PolicygateError):
    """Timestamp outside the tolerance window (HTTP 400)."""


MAX_AGE_S = 300


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    payload = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), payload, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    secret: str,
    delivery_id: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    now: float | None = None,
    max_age_s: int = MAX_AGE_S,
) -> None:
    """Raise unless the delivery is signed with ``secret`` and recent. Signature first: an
    unauthenticated caller learns nothing about timestamps."""
    if not delivery_id or not timestamp or not signature:
        raise SignatureError("missing X-MLflow-Delivery-Id, X-MLflow-Timestamp or X-MLflow-Signature header")
    expected = sign(secret, delivery_id, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise SignatureError("signature does not match")
    try:
        sent = int(timestamp)
    except ValueError:
        raise StaleDelivery("X-MLflow-Timestamp is not a unix time") from None
    age = (time.time() if now is None else now) - sent
    if age > max_age_s or age < -max_age_s:
        raise StaleDelivery(f"delivery timestamp is {int(age)} s from now (limit {max_age_s} s)")
