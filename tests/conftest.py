"""Shared fixtures: the real OPA binary (never mocked), temporary decision logs. The plain helpers
the tests import live in tests/support/."""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.pool import NullPool

from policygate.config import Settings
from policygate.decisions.log import DecisionLog
from policygate.engine.opa import OpaEngine
from policygate.runtime.engines import start_engine
from tests.support.checkout import REGO, ROOT, load_example, opa_binary


@pytest.fixture(scope="session")
def opa() -> Iterator[OpaEngine]:
    """One real managed OPA for the session, loading rego/: an OPA server (its URL, token and process
    are what many tests use), whatever POLICYGATE_ENGINE says."""
    engine = start_engine(None, opa_binary(), REGO, engine="http")
    yield engine
    engine.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/decisions.db"


@pytest.fixture
def client(sqlite_url: str) -> Iterator[Any]:
    """The API on the real OPA and a SQLite log of its own (a TestClient, lifespan started)."""
    from fastapi.testclient import TestClient

    from policygate.api.app import create_app

    settings = Settings(db_url=sqlite_url, policy_dir=REGO, opa_bin=opa_binary())
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def decision_log(sqlite_url: str) -> Iterator[DecisionLog]:
    log = DecisionLog(sqlite_url)
    yield log
    log.close()


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


@contextlib.contextmanager
def _tracking_uri_kept() -> Iterator[None]:
    """MLflow's ``set_tracking_uri`` (the demo's seeding calls it) writes MLFLOW_TRACKING_URI into this
    process's environment; put back what was there, so nothing later talks to a stopped server."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before


@pytest.fixture(autouse=True)
def _tracking_uri_restored() -> Iterator[None]:
    """Each test gets back the MLFLOW_TRACKING_URI it started with."""
    with _tracking_uri_kept():
        yield


@pytest.fixture(scope="module", autouse=True)
def _tracking_uri_restored_per_module() -> Iterator[None]:
    """Each module too: a module-scoped MLflow server (test_register.py) seeds before any test's
    snapshot, and a later module's /readyz would probe the stopped server."""
    with _tracking_uri_kept():
        yield


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Socket guard: a connection or name lookup beyond loopback is refused and recorded."""
    import socket

    attempts: list[str] = []
    real_connect, real_connect_ex, real_getaddrinfo = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.getaddrinfo,
    )

    def loopback(host: object) -> bool:
        return isinstance(host, str) and (host in ("localhost", "::1") or host.startswith("127."))

    def refuse(what: object) -> OSError:
        attempts.append(repr(what))
        return OSError(f"network access blocked by the test socket guard: {what!r}")

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and not loopback(address[0]):
            raise refuse(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if isinstance(address, tuple) and not loopback(address[0]):
            raise refuse(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not loopback(host):
            raise refuse(host)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return attempts


@pytest.fixture
def azure_world(no_network: list[str]) -> Iterator[Any]:
    """An Azure ML workspace replayed at the azure-core transport (tests/fixtures/azure), no network.

    MLClient sets AZUREML_CURRENT_CLOUD in the environment; it is put back afterwards.
    """
    from tests.fixtures.azure.world import AzureWorld

    before = os.environ.get("AZUREML_CURRENT_CLOUD")
    yield AzureWorld()
    if before is None:
        os.environ.pop("AZUREML_CURRENT_CLOUD", None)
    else:
        os.environ["AZUREML_CURRENT_CLOUD"] = before


@pytest.fixture
def azure_with_foundry(azure_world: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The replayed workspace and Foundry project, configured from the environment as in production."""
    from tests.fixtures.azure.world import FOUNDRY_ENDPOINT, RG, SUB, WS

    monkeypatch.setenv("POLICYGATE_AZURE__SUBSCRIPTION_ID", SUB)
    monkeypatch.setenv("POLICYGATE_AZURE__RESOURCE_GROUP", RG)
    monkeypatch.setenv("POLICYGATE_AZURE__WORKSPACE", WS)
    monkeypatch.setenv("POLICYGATE_AZURE__FOUNDRY_PROJECT_ENDPOINT", FOUNDRY_ENDPOINT)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return azure_world


# --- PostgreSQL: the decision-log tests run on both backends ---------------------------------

PG_URL_FILE = ROOT / ".policygate" / "pg" / "test-url"


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """The test PostgreSQL: $POLICYGATE_TEST_PG_URL, else the one scripts/ensure-postgres.sh keeps.

    The script is idempotent (about 0.1 s when the server is up), so a plain `pytest`
    works too; a PostgreSQL that cannot be had fails the tests, it never skips them.
    """
    url = os.environ.get("POLICYGATE_TEST_PG_URL")
    if url:
        return url
    script = ROOT / "scripts" / "ensure-postgres.sh"
    proc = subprocess.run([str(script)], capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0 or not PG_URL_FILE.is_file():
        pytest.fail(
            f"PostgreSQL is required for the decision-log tests and {script.name} failed "
            f"(exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
        )
    return PG_URL_FILE.read_text().strip()


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty schema of the test database per test (its own decision_log and alembic_version)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(pg_server_url, poolclass=NullPool)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(pg_server_url).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on SQLite and on PostgreSQL: both backends must behave alike."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/decisions.db"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def any_log(log_url: str) -> Iterator[DecisionLog]:
    log = DecisionLog(log_url)
    yield log
    log.close()
