"""The background parts every running policygate has (CLI and ``serve``): the waiver sync, the
OPA supervisor, the checkpoint writer and the policy watcher, each built as a lifecycle part."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from policygate.config import Settings
from policygate.decisions.log import DecisionLog, LogError
from policygate.decisions.service import DecisionService
from policygate.engine.errors import EngineError
from policygate.engine.opa import OpaEngine
from policygate.engine.supervisor import OpaSupervisor, Restore
from policygate.metrics import Metrics
from policygate.policy.waiver_sync import WaiverSync
from policygate.policy.watch import PolicyWatcher
from policygate.runtime.lifecycle import Adapted

if TYPE_CHECKING:
    from policygate.decisions.checkpoint_writer import CheckpointWriter

logger = logging.getLogger(__name__)


def waiver_part(engine: OpaEngine, log: DecisionLog) -> Adapted[WaiverSync]:
    """The active waivers (from the log) go to OPA at start, and again every 30 s."""
    return Adapted("waiver sync", WaiverSync(engine, log), problem=lambda sync: sync.last_error)


def supervisor_part(
    engine: OpaEngine, waivers: WaiverSync | None, clock: Callable[[], float]
) -> Adapted[OpaSupervisor]:
    """A managed OPA that dies is started again."""
    return Adapted(
        "OPA supervisor",
        OpaSupervisor(engine, restore=restorer(waivers), clock=clock),
        problem=down_problem,
    )


def down_problem(supervisor: OpaSupervisor) -> str | None:
    down = supervisor.down_for()
    return f"the managed OPA is down ({down:.0f} s), restarting" if down > 0 else None


def checkpoint_part(
    settings: Settings, log: DecisionLog, metrics: Metrics
) -> Adapted[CheckpointWriter] | None:
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
    return Adapted(
        "checkpoint writer",
        writer,
        check="checkpoints",
        problem=lambda w: f"decision_log_tampered: {w.tampered}" if w.tampered else None,
    )


def watcher_part(
    settings: Settings, service: DecisionService, started: bool, waivers: WaiverSync | None
) -> Adapted[PolicyWatcher] | None:
    """``serve --watch``: follow the managed OPA's reloads. An external OPA loads its own policies."""
    engine = service.engine
    if not started or engine is None:
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

    watcher = PolicyWatcher(
        engine,
        settings.opa_binary,
        settings.policy_path,
        examples_dir=settings.examples_path,
        on_reload=reloaded,
        restore=restorer(waivers),
    )
    return Adapted(
        "policy watcher",
        watcher,
        check="policy",
        problem=lambda w: None if w.state.ready else "the policy files on disk were refused (see policy)",
        detail=lambda w: w.state.to_dict(),
    )


def restorer(waivers: WaiverSync | None) -> Restore:
    """A new OPA (reloaded or restarted) gets the waivers before it serves, then ``then`` swaps it in."""

    def restore(candidate: OpaEngine, then: Callable[[], None]) -> None:
        if waivers is not None:
            waivers.repush(candidate, then)
        else:
            then()

    return restore


def rule_ids(engine: OpaEngine) -> list[str]:
    """The rule ids of the policy the engine serves: as loaded, or (an OPA policygate did not load)
    from the annotations OPA holds (none: OPA did not start)."""
    if engine.rule_ids:
        return list(engine.rule_ids)
    from policygate.policy.authoring import annotated_rules

    try:
        return [str(a["custom"]["id"]) for a in annotated_rules(engine)]
    except EngineError:
        return []
