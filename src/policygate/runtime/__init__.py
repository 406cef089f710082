"""The composition root: Settings in, a running policygate (log, OPA, service, ...) out."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from policygate.bundles.status import refused_count
from policygate.config import Settings
from policygate.decisions.log import DecisionLog
from policygate.decisions.service import DecisionService
from policygate.engine.errors import EngineError
from policygate.engine.opa import OpaEngine
from policygate.engine.supervisor import OpaSupervisor
from policygate.metrics import Metrics
from policygate.policy.revisions import Keeper
from policygate.policy.serving import engine_for
from policygate.policy.waiver_sync import WaiverSync
from policygate.policy.watch import PolicyWatcher
from policygate.runtime.lifecycle import Lifecycle, PartStatus
from policygate.runtime.null_engine import NullEngine
from policygate.runtime.parts import checkpoint_part, rule_ids, supervisor_part, waiver_part, watcher_part
from policygate.sources.base import EvidenceSource
from policygate.sources.collect import Collector
from policygate.sources.directory import Directory, build_directory

if TYPE_CHECKING:
    from policygate.audit.schedule import AuditSchedule
    from policygate.auth.authenticator import Authenticator
    from policygate.decisions.checkpoint_writer import CheckpointWriter
    from policygate.engine.ahead import EngineAhead
    from policygate.runtime.serve import BundleCache, ChainProgress
    from policygate.webhooks.worker import WebhookWorker
    from policygate.webhooks.writeback import MlflowWriteBack

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything a running policygate holds, built from Settings by :func:`open_runtime` and
    released by it: no module keeps a registry of its own on the side."""

    settings: Settings
    log: DecisionLog
    engine: OpaEngine  # a NullEngine when OPA did not start
    service: DecisionService
    metrics: Metrics
    waivers: WaiverSync | None = None
    watcher: PolicyWatcher | None = None
    supervisor: OpaSupervisor | None = None
    checkpoints: CheckpointWriter | None = None
    # serve's own parts (runtime.serve)
    webhooks: WebhookWorker | None = None
    writeback: MlflowWriteBack | None = None
    audits: AuditSchedule | None = None
    bundles: BundleCache | None = None
    chain: ChainProgress | None = None
    lifecycle: Lifecycle = field(default_factory=Lifecycle)

    def statuses(self) -> list[PartStatus]:
        """Each running background part's status, in the order they started."""
        return self.lifecycle.statuses()

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
    engine_ahead: EngineAhead | None = None,
    **client_options: Any,
) -> Iterator[Runtime]:
    """The composition root. Opens the log first (a decision that cannot be recorded is never
    answered), then OPA; an OPA that will not start is a :class:`NullEngine`, and the service
    records an ``error`` decision for every request.
    Then the background parts start, in order (:mod:`policygate.runtime.parts`); they stop in
    reverse, the log last.

    ``sources`` replaces the configured evidence sources; ``credential``, ``transport`` and any
    other azure-core ``client_options`` go to the Azure clients of the configured ones; ``clock``
    drives the OPA supervisor's backoff. ``engine_ahead``: the engine, started by the caller before
    its imports (a cold CLI run, :mod:`policygate.engine.ahead`); taken once the log is open, and the
    caller's to close until then.
    """
    log = DecisionLog(settings.db_url, lock_timeout_s=settings.db_lock_timeout_s)
    engine: OpaEngine
    error: EngineError | None = None
    try:
        engine = engine_ahead.take() if engine_ahead is not None else engine_for(settings)
    except EngineError as exc:
        engine, error = NullEngine(exc, settings.opa_timeout_s), exc
    azure = {
        **client_options,
        **{k: v for k, v in (("credential", credential), ("transport", transport)) if v},
    }
    collector = Collector(
        sources if sources is not None else build_sources(settings, **azure),
        settings.links,
        directory=build_directory_of(settings, credential=credential, transport=transport),
        budget_s=settings.source_timeout_s,
    )
    lifecycle = Lifecycle()
    runtime: Runtime | None = None
    try:
        waivers: WaiverSync | None = None
        supervisor: OpaSupervisor | None = None
        if error is None:  # an OPA to keep the waivers in (and to bring back when managed)
            waivers = lifecycle.started(waiver_part(engine, log))
            if engine.managed is not None:
                supervisor = lifecycle.started(supervisor_part(engine, waivers, clock))
        metrics = service_metrics(log, supervisor)
        checkpoints = checkpoint_part(settings, log, metrics)
        writer = lifecycle.started(checkpoints) if checkpoints is not None else None
        metrics.gauge(
            "policygate_opa_bundles_refused",
            "Bundles whose newest download the OPA refused (bad signature, does not compile): the last "
            "good one keeps deciding. Always 0 for an OPA on a policy directory.",
            lambda: refused_count(engine),
        )
        service = DecisionService(engine, log, error, collector, rule_ids(engine), metrics)
        service.keep_revision = Keeper(log, service)  # each revision that decides, kept in the chain
        runtime = Runtime(
            settings,
            log,
            engine,
            service,
            metrics,
            waivers,
            supervisor=supervisor,
            checkpoints=writer,
            lifecycle=lifecycle,
        )
        if settings.watch:
            watcher = watcher_part(settings, service, error is None, waivers)
            runtime.watcher = lifecycle.started(watcher) if watcher is not None else None
        yield runtime
    finally:
        lifecycle.stop()
        if runtime is not None and "authenticator" in runtime.__dict__:  # made only if used
            runtime.authenticator.close()
        collector.close()
        engine.close()
        log.close()


@contextmanager
def open_service(settings: Settings, *, engine_ahead: EngineAhead | None = None) -> Iterator[DecisionService]:
    """:func:`open_runtime`'s decision service (docs/python-api.md)."""
    with open_runtime(settings, engine_ahead=engine_ahead) as runtime:
        yield runtime.service


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


def build_directory_of(settings: Settings, credential: Any = None, transport: Any = None) -> Directory | None:
    """The identity directory POLICYGATE_DIRECTORY names (cached), or None (docs/identity.md);
    ``graph`` uses the Azure source's ``credential`` and ``transport`` (the test and embedding seam)."""
    token = settings.directory_token.get_secret_value() if settings.directory_token else None
    return build_directory(
        settings.directory,
        token,
        settings.source_timeout_s,
        settings.directory_cache_s,
        graph_url=settings.graph_url,
        credential=credential,
        transport=transport,
    )


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
