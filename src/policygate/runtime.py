"""Wire settings into a running service: decision log, OPA engine, decision service."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from policygate.config import Settings
from policygate.decisions.log import DecisionLog, LogError
from policygate.decisions.service import DecisionService
from policygate.engine.opa import EngineError, OpaEngine
from policygate.engine.supervisor import OpaSupervisor, Restore
from policygate.metrics import Metrics
from policygate.policy.waiver_sync import WaiverSync
from policygate.policy.watch import PolicyWatcher
from policygate.sources.base import EvidenceSource
from policygate.sources.collect import Collector

if TYPE_CHECKING:
    from policygate.decisions.checkpoint import CheckpointWriter

logger = logging.getLogger(__name__)


@contextmanager
def open_service(settings: Settings) -> Iterator[DecisionService]:
    """Open the log first (a decision that cannot be recorded is never answered),
    then OPA; an OPA that will not start still yields a service that records errors."""
    log = DecisionLog(settings.db_url)
    engine: OpaEngine | None = None
    error: EngineError | None = None
    try:
        engine = OpaEngine.start(
            settings.opa_url,
            settings.opa_binary,
            settings.policy_path,
            settings.opa_timeout_s,
            examples_dir=settings.examples_path,
            token=settings.opa_token.get_secret_value() if settings.opa_token else None,
        )
    except EngineError as exc:
        error = exc
    collector = Collector(build_sources(settings))
    # The active waivers (from the log) go to OPA now, and again every 30 s.
    waivers = WaiverSync(engine, log).start() if engine is not None else None
    watcher: PolicyWatcher | None = None
    checkpoints = start_checkpoints(settings, log)
    supervisor = None
    if engine is not None and engine.managed is not None:  # a managed OPA that dies is started again
        supervisor = OpaSupervisor(engine, restore=restorer(waivers)).start()
    metrics = Metrics()
    metrics.gauge("policygate_log_queue_depth", "Records waiting to be committed.", log.queue_depth)
    metrics.gauge(
        "policygate_opa_restarts",
        "Times the managed OPA was started again after it ended.",
        lambda: supervisor.restarts if supervisor is not None else 0,
    )
    metrics.gauge(
        "policygate_opa_down_seconds",
        "How long the managed OPA has been down (0: running).",
        lambda: supervisor.down_for() if supervisor is not None else 0.0,
    )
    try:
        service = DecisionService(engine, log, error, collector, rule_ids(engine), metrics)
        service.supervisor = supervisor
        if settings.watch:
            watcher = watch_policies(settings, service, waivers)
        yield service
    finally:
        if supervisor is not None:
            supervisor.stop()
        if checkpoints is not None:
            checkpoints.stop()
        if watcher is not None:
            watcher.stop()
        if waivers is not None:
            waivers.stop()
        collector.close()
        if engine is not None:
            engine.close()
        log.close()


def watch_policies(
    settings: Settings, service: DecisionService, waivers: WaiverSync | None
) -> PolicyWatcher | None:
    """``serve --watch``: follow the managed OPA's reloads. An external OPA loads its own policies."""
    engine = service.engine
    if engine is None:
        logger.warning(
            "--watch: OPA did not start, so there is nothing to reload; fix the policies and restart"
        )
        return None
    if engine.managed is None:
        logger.warning(
            "--watch applies only to the managed OPA: the OPA at %s (POLICYGATE_OPA_URL) loads its own "
            "policies; decisions re-read its revision every 30 s",
            engine.url,
        )
        return None

    def reloaded() -> None:
        service.rule_ids = rule_ids(engine)

    return PolicyWatcher(
        engine,
        settings.opa_binary,
        settings.policy_path,
        examples_dir=settings.examples_path,
        on_reload=reloaded,
        restore=restorer(waivers),
    ).start()


def restorer(waivers: WaiverSync | None) -> Restore:
    """A new OPA (reloaded or restarted) gets the waivers before it serves, then ``then`` swaps it in."""

    def restore(candidate: OpaEngine, then: Callable[[], None]) -> None:
        if waivers is not None:
            waivers.repush(candidate, then)
        else:
            then()

    return restore


def start_checkpoints(settings: Settings, log: DecisionLog) -> CheckpointWriter | None:
    """Signed checkpoints to POLICYGATE_CHECKPOINT_DIR when a key and a directory are configured."""
    if settings.checkpoint_key is None or settings.checkpoint_dir is None:
        return None
    from policygate.decisions.checkpoint import CheckpointError, CheckpointWriter, load_private

    try:
        key = load_private(settings.checkpoint_key)
    except CheckpointError as exc:  # configured but unreadable: refuse to start without them
        raise LogError(f"POLICYGATE_CHECKPOINT_KEY: {exc}") from None
    writer = CheckpointWriter(
        log, key, settings.checkpoint_dir, settings.checkpoint_every, settings.checkpoint_interval_s
    )
    return writer.start()


def rule_ids(engine: OpaEngine | None) -> list[str]:
    """The rule ids of the policy the engine serves: as loaded, or (an OPA policygate did not load)
    from the annotations OPA holds."""
    if engine is None:
        return []
    if engine.rule_ids:
        return list(engine.rule_ids)
    from policygate.policy.authoring import annotated_rules

    try:
        return [str(a["custom"]["id"]) for a in annotated_rules(engine)]
    except EngineError:
        return []


def build_sources(settings: Settings, **azure_options: Any) -> dict[str, EvidenceSource]:
    """The sources configured; a platform without configuration has none (its refs give an error).

    Azure ML is always available (full azureml:// refs name their workspace or registry; the SDKs
    load on first use). ``azure_options`` (credential, transport, client options) go to the Azure
    clients: the seam for embedding and tests.
    """
    sources: dict[str, EvidenceSource] = {}
    if settings.mlflow_uri:
        from policygate.sources.mlflow import MlflowSource

        sources["mlflow"] = MlflowSource(
            settings.mlflow_uri, settings.tags, settings.source_timeout_s, settings.evidence_cache_ttl_s
        )
    from policygate.sources.azureml import AzureMLSource

    sources["azureml"] = AzureMLSource(
        settings.azure, settings.tags, settings.source_timeout_s, **azure_options
    )
    return sources
