"""Shared fixtures: the real OPA binary (never mocked), temporary decision logs."""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from policygate.config import Settings
from policygate.decisions.log import DecisionLog
from policygate.engine.opa import OpaEngine

ROOT = Path(__file__).resolve().parents[1]
REGO = ROOT / "rego"
EXAMPLES = ROOT / "examples" / "evidence"


def opa_binary() -> str:
    binary = Settings().opa_binary
    if not (Path(binary).exists() or shutil.which(binary)):
        pytest.fail(
            f"OPA binary {binary!r} not found: run `make setup` (a missing OPA is a failure, not a skip)"
        )
    return binary


@pytest.fixture(scope="session")
def opa() -> Iterator[OpaEngine]:
    """One real managed OPA for the session, loading rego/."""
    engine = OpaEngine.start(None, opa_binary(), REGO)
    yield engine
    engine.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/decisions.db"


@pytest.fixture
def decision_log(sqlite_url: str) -> Iterator[DecisionLog]:
    log = DecisionLog(sqlite_url)
    yield log
    log.close()


def load_example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return data


@pytest.fixture
def compliant() -> dict[str, Any]:
    return load_example("compliant")


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow tracking server (SQLite, loopback, free port) for the whole session."""
    from policygate.demo.mlflow_server import MlflowServer

    env = {  # so the server can deliver webhooks to a policygate on loopback over http
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
    }
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"), env=env)
    server.start()
    yield server.url
    server.stop()
