"""The composition root: Settings in, a running policygate (log, OPA, service, ...) out."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from policygate.bundles.status import refused_count
from policygate.config import Settings
from policygate.decisions.log import DecisionLog, LogError
from policygate.decisions.service import DecisionService
from policygate.engine.errors import EngineError
from policygate.engine.opa import OpaEngine
from policygate.engine.supervisor import OpaSupervisor, Restore
from policygate.metrics import Metrics
from policygate.policy.revisions import Keeper
from policygate.policy.waiver_sync import WaiverSync
from policygate.policy.watch import PolicyWatcher
from policygate.runtime.engines import start_engine
from policygate.sources.base import EvidenceSource
from policygate.sources.collect import Collector
from policygate.sources.directory import Directory, build_directory

if TYPE_CHECKING:
    from policygate.auth.authenticator import Authenticator
    from policygate.decisions.checkpoint_writer import CheckpointWriter

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything a running policygate holds, built from Settings by :func:`open_runtime` and
    released by it: no module keeps a registry of its own on the side."""

    settings: Settings
    log: DecisionLog
    engine: OpaEngine | None
    service: DecisionService
    metrics: Metrics
    waivers: WaiverSync | None = None
    watcher: PolicyWatcher | None = None
    supervisor: OpaSupervisor | None = None
    checkpoints: CheckpointWriter | None = None

    @cached_property
    def authenticator(self) -> Authenticator:
        """Who calls (the API): made on first use, so a CLI run never loads the OIDC libraries."""
        from policygate.auth import authenticator

        s = self.settings
        return authenticator.Authenticator(
            self.log,
            required=s.auth_required,
            oidc=s.oidc,
            rate_per_minute=s.rate_limit_per_minute,
            failures_per_minute=s.auth_failures_per_minute,
        )


@contextmanager
def open_runtime(
    settings: Settings,
    *,
    sources: Mapping[str, EvidenceSource] | None = None,
    credential: Any = None,
    transport: Any = None,
    clock: Callable[[], float] = time.monotonic,
    **client_options: Any,
) -> Iterator[Runtime]:
    """The composition root. Opens the log first (a decision that cannot be recorded is never
    answered), then OPA; an OPA that will not start still yields a service that records errors.

    ``sources`` replaces the configured evidence sources; ``credential``, ``transport`` and any
    other azure-core ``client_options`` go to the Azure clients of the configured ones; ``clock``
    drives the OPA supervisor's backoff.
    """
    log = DecisionLog(settings.db_url, lock_timeout_s=settings.db_lock_timeout_s)
    engine: OpaEngine | None = None
    error: EngineError | None = None
    try:
        engine = start_engine(
            settings.opa_url,
            settings.opa_binary,
            settings.policy_path,
            settings.opa_timeout_s,
            examples_dir=settings.examples_path,
            token=settings.opa_token.get_secret_value() if settings.opa_token else None,
            pull=settings.bundle_pull.opa_config if settings.bundle_pull.url else None,
            pull_token=settings.bundle_pull.token.get_secret_value() if settings.bundle_pull.token else None,
            engine=settings.engine,
        )
    except EngineError as exc:
        error = exc
    azure = {
        **client_options,
        **{k: v for k, v in (("credential", credential), ("transport", transport)) if v},
    }
    collector = Collector(
        sources if sources is not None else build_sources(settings, **azure),
        settings.links,
        directory=build_directory_of(settings),
    )
    # The active waivers (from the log) go to OPA now, and again every 30 s.
    waivers = WaiverSync(engine, log).start() if engine is not None else None
    supervisor = None
    if engine is not None and engine.managed is not None:  # a managed OPA that dies is started again
        supervisor = OpaSupervisor(engine, restore=restorer(waivers), clock=clock).start()
    metrics = service_metrics(log, supervisor)
    checkpoints = start_checkpoints(settings, log, metrics)
    metrics.gauge(
        "policygate_opa_bundles_refused",
        "Bundles whose newest download the OPA refused (bad signature, does not compile): the last good "
        "one keeps deciding. Always 0 for an OPA on a policy directory.",
        lambda: refused_count(engine),
    )
    service = DecisionService(engine, log, error, collector, rule_ids(engine), metrics)
    service.keep_revision = Keeper(log, service)  # each revision that decides, kept in the chain
    runtime = Runtime(
        settings, log, engine, service, metrics, waivers, supervisor=supervisor, checkpoints=checkpoints
    )
    try:
        if settings.watch:
            runtime.watcher = watch_policies(settings, service, waivers)
        yield runtime
    finally:
        close(runtime)


@contextmanager
def open_service(settings: Settings) -> Iterator[DecisionService]:
    """:func:`open_runtime`'s decision service (docs/python-api.md)."""
    with open_runtime(settings) as runtime:
        yield runtime.service


def close(runtime: Runtime) -> None:
    """Stop what runs, in the reverse order of starting; the log last."""
    for part in (runtime.supervisor, runtime.checkpoints, runtime.watcher, runtime.waivers):
        if part is not None:
            part.stop()
    if "authenticator" in runtime.__dict__:  # made only if used
        runtime.authenticator.close()
    runtime.service.collector.close()
    if runtime.engine is not None:
        runtime.engine.close()
    runtime.log.close()


def service_metrics(log: DecisionLog, supervisor: OpaSupervisor | None) -> Metrics:
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
    return metrics


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
    if engine.managed is None and engine.kind == "http":
        logger.warning(
            "--watch applies only to the managed OPA: the OPA at %s (POLICYGATE_OPA_URL) loads its own "
            "policies; decisions re-read its revision every 30 s",
            engine.url,
        )
        return None
    if engine.managed is not None and engine.managed.pulls:
        logger.warning(
            "--watch does nothing here: the managed OPA pulls signed bundles (POLICYGATE_BUNDLE_PULL__URL) "
            "and takes each new one itself"
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


def start_checkpoints(settings: Settings, log: DecisionLog, metrics: Metrics) -> CheckpointWriter | None:
    """Signed checkpoints to POLICYGATE_CHECKPOINT_DIR when a key and a directory are configured
    (countersigned by POLICYGATE_CHECKPOINT_WITNESS_URL's witness when set)."""
    if settings.checkpoint_key is None or settings.checkpoint_dir is None:
        return None
    from policygate.decisions.checkpoint import CheckpointError, load_private
    from policygate.decisions.checkpoint_writer import CheckpointWriter
    from policygate.decisions.witness import WitnessClient

    try:
        key = load_private(settings.checkpoint_key)
    except CheckpointError as exc:  # configured but unreadable: refuse to start without them
        raise LogError(f"POLICYGATE_CHECKPOINT_KEY: {exc}") from None
    url = settings.checkpoint_witness_url
    writer = CheckpointWriter(
        log,
        key,
        settings.checkpoint_dir,
        settings.checkpoint_every,
        settings.checkpoint_interval_s,
        witness=WitnessClient(url, log) if url else None,
        refused=lambda reason: metrics.checkpoint_refusals.labels(reason).inc(),
    )
    return writer.start()


def rule_ids(engine: OpaEngine | None) -> list[str]:
    """The rule ids of the policy the engine serves: as loaded, or (an OPA policygate did not load)
    from the annotations OPA holds."""
    if engine is None:
        return []
    if engine.rule_ids:
        return list(engine.rule_ids)
    from policygate.engine.catalogue import annotated_rules

    try:
        return [str(a["custom"]["id"]) for a in annotated_rules(engine)]
    except EngineError:
        return []


def build_directory_of(settings: Settings) -> Directory | None:
    """The identity directory POLICYGATE_DIRECTORY names (cached), or None (docs/identity.md)."""
    token = settings.directory_token.get_secret_value() if settings.directory_token else None
    return build_directory(settings.directory, token, settings.source_timeout_s, settings.directory_cache_s)


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
            settings.mlflow_uri,
            settings.tags,
            settings.source_timeout_s,
            settings.evidence_cache_ttl_s,
            settings.artifacts,
        )
    from policygate.sources.azureml import AzureMLSource

    sources["azureml"] = AzureMLSource(
        settings.azure,
        settings.tags,
        settings.source_timeout_s,
        artifacts=settings.artifacts,
        **azure_options,
    )
    return sources
