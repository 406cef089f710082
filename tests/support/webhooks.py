"""Signed MLflow webhook deliveries, as MLflow sends them, and waiting for what they cause."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from mlflow.tracking import MlflowClient

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


def delivery(
    body: dict[str, Any], *, secret: str = SECRET, delivery_id: str | None = None, age_s: int = 0
) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers of one signed delivery (``age_s`` seconds old)."""
    raw = json.dumps(body).encode()
    did = delivery_id or str(uuid.uuid4())
    ts = str(int(time.time()) - age_s)
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


def version_tags(uri: str, name: str, version: str) -> dict[str, str]:
    return dict(MlflowClient(uri).get_model_version(name, version).tags)
