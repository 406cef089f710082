"""Signed MLflow webhook deliveries, as MLflow sends them, and waiting for what they cause."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from policygate.webhooks.signatures import sign

SECRET = "webhook-test-secret"
T = TypeVar("T")


def eventually(fn: Callable[[], T | None], timeout_s: float = 60.0, every_s: float = 0.25) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"condition not met within {timeout_s} s")


def delivery(body: dict[str, Any], *, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers of one signed delivery."""
    raw = json.dumps(body).encode()
    did, ts = str(uuid.uuid4()), str(int(time.time()))
    headers = {
        "content-type": "application/json",
        "x-mlflow-delivery-id": did,
        "x-mlflow-timestamp": ts,
        "x-mlflow-signature": sign(secret, did, ts, raw),
    }
    return raw, headers


def alias_event(name: str, version: str, alias: str = "champion") -> dict[str, Any]:
    return {
        "entity": "model_version_alias",
        "action": "created",
        "timestamp": "2026-11-27T00:00:00Z",
        "data": {"name": name, "alias": alias, "version": version},
    }
