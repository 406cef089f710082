"""``serve``'s own background parts, built by the runtime like the others: the webhook worker (with
the MLflow write-back), the scheduled audits, the bundle cache and the console's chain progress.
:func:`open_server` is the runtime the API's lifespan starts and stops."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from policygate.config import Settings
from policygate.decisions.log import DecisionLog, LogError
from policygate.engine.errors import EngineError
from policygate.runtime import Runtime, open_runtime
from policygate.runtime.lifecycle import Adapted, PartStatus
from policygate.webhooks.change import ChangeTags
from policygate.webhooks.worker import WebhookWorker
from policygate.webhooks.writeback import MlflowWriteBack

if TYPE_CHECKING:
    from policygate.audit.schedule import AuditSchedule

CHAIN_FRESH_S = 300.0  # a chain verified this recently counts as verified up to where it was


@contextmanager
def open_server(settings: Settings) -> Iterator[Runtime]:
    """:func:`policygate.runtime.open_runtime` with serve's parts started after the others (so
    they stop first)."""
    with open_runtime(settings) as runtime:
        start_serving(runtime)
        yield runtime


def start_serving(runtime: Runtime) -> None:
    settings, lifecycle = runtime.settings, runtime.lifecycle
    writeback = MlflowWriteBack(settings.mlflow_uri) if settings.mlflow_uri else None
    worker = WebhookWorker(
        runtime.service,
        writeback,
        enforce=settings.webhook_enforce,
        maxsize=settings.webhook_queue_size,
        run_wait_s=settings.webhook_run_wait_s,
        change_tags=ChangeTags(settings.webhook_ticket_tag or None, settings.webhook_run_url_tag or None),
    )
    runtime.metrics.gauge(
        "policygate_webhook_queue_depth",
        "Webhook deliveries waiting for a decision (queued, or waiting for their training run).",
        lambda: worker.queue.qsize() + worker.waiting,
    )
    if writeback is not None:
        runtime.writeback = lifecycle.started(Adapted("MLflow write-back", writeback))
    runtime.webhooks = lifecycle.started(Adapted("webhook worker", worker))
    runtime.audits = start_audits(runtime)
    runtime.bundles = lifecycle.started(Adapted("bundle cache", BundleCache()))
    runtime.chain = ChainProgress()
    lifecycle.start(runtime.chain)


def start_audits(runtime: Runtime) -> AuditSchedule | None:
    """POLICYGATE_AUDIT_INTERVAL_S: audits on a schedule; the metrics show the latest recorded run
    from the start (a CLI run's too)."""
    from policygate.audit.run import Auditor, latest_run

    try:
        last = latest_run(runtime.log)
    except (LogError, SQLAlchemyError, ValueError):
        last = None
    if last is not None:
        runtime.metrics.audit_observed(last, count=False)
    if runtime.settings.audit_interval_s is None:
        return None
    from policygate.audit.schedule import AuditSchedule

    auditor = Auditor(runtime.service, runtime.settings, writeback=runtime.writeback)
    schedule = AuditSchedule(auditor, runtime.settings.audit_interval_s)
    return runtime.lifecycle.started(Adapted("audit schedule", schedule))


class BundleCache:
    """The newest bundle built, by revision (one build at a time), for ``GET /v1/bundles/...``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.revision: str | None = None
        self.path: Path | None = None
        self.dir = Path(tempfile.mkdtemp(prefix="policygate-bundles-"))

    def get(self, settings: Settings, revision: str) -> Path:
        from policygate.bundles.build import build_bundle
        from policygate.output import load_report

        with self.lock:
            if self.revision == revision and self.path is not None and self.path.exists():
                return self.path
            assert settings.bundle_signing_key is not None
            out = self.dir / f"{revision.removeprefix('sha256:')[:16]}.tar.gz"
            built = build_bundle(
                settings.opa_binary,
                settings.policy_path,
                out,
                signing_key=settings.bundle_signing_key,
                signing_alg=settings.bundle_signing_alg,
                timeout_s=settings.opa_timeout_s,
            )
            if built.revision is None:
                raise EngineError(
                    "policy_error", f"the policies are refused: {load_report.render(built.report)}"
                )
            if built.revision != revision:  # the files changed between the two reads
                raise EngineError("policy_error", "the policy directory changed while it was bundled: retry")
            if self.path is not None:
                self.path.unlink(missing_ok=True)
            self.revision, self.path = revision, out
            return out

    def start(self) -> BundleCache:
        return self

    def stop(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


class ChainProgress:
    """How far the whole chain was verified, and when: a console decision page asks only for the rest."""

    name = "chain progress"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seq, self.hash, self.at = 0, "", 0.0

    def start(self) -> ChainProgress:
        return self

    def stop(self) -> None:
        """Nothing runs: the walks happen in the requests that ask for them."""

    def status(self) -> PartStatus:
        return PartStatus(self.name, True)

    def verify_upto(self, log: DecisionLog, seq: int) -> tuple[bool | None, str | None]:
        """(True, None) verified; (False, problem) broken; (None, why) not checked now: one walk at a
        time, and a page never waits for another's (a million records take a while)."""
        if not self.lock.acquire(blocking=False):
            return None, "another verification of the chain is running: try again in a moment"
        try:
            return self._verify_upto(log, seq)
        finally:
            self.lock.release()

    def _verify_upto(self, log: DecisionLog, seq: int) -> tuple[bool, str | None]:
        fresh = time.monotonic() - self.at < CHAIN_FRESH_S
        if fresh and self.seq >= seq:
            return True, None
        after = (self.seq, self.hash) if fresh and self.seq else None
        result = log.verify(upto=seq, after=after)
        if not result.ok:
            self.seq, self.hash, self.at = 0, "", 0.0
            return False, result.problem
        self.seq, self.hash = seq, log.hash_at(seq) or ""
        self.at = self.at if after else time.monotonic()  # freshness counts from a full walk
        return True, None
