"""Wire settings into a running service: decision log, OPA engine, decision service."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from policygate.config import Settings
from policygate.decisions.log import DecisionLog
from policygate.decisions.service import DecisionService
from policygate.engine.opa import EngineError, OpaEngine


@contextmanager
def open_service(settings: Settings) -> Iterator[DecisionService]:
    """Open the log first (a decision that cannot be recorded is never answered),
    then OPA; an OPA that will not start still yields a service that records errors."""
    log = DecisionLog(settings.db_url)
    engine: OpaEngine | None = None
    error: EngineError | None = None
    try:
        engine = OpaEngine.start(
            settings.opa_url, settings.opa_binary, settings.policy_path, settings.opa_timeout_s
        )
    except EngineError as exc:
        error = exc
    try:
        yield DecisionService(engine, log, error)
    finally:
        if engine is not None:
            engine.close()
        log.close()
