"""Decide webhook-triggered promotions in the background, durably.

Each accepted delivery is first committed to the decision log (kind
``delivery``); its decision gets a stable id derived from the delivery, so a
retried delivery, a restart or a full queue never loses or duplicates a
decision: a recovery pass re-queues recorded deliveries that have no decision yet.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from policygate.decisions.log import LogError
from policygate.decisions.service import DecisionService
from policygate.evidence import Target
from policygate.refs import parse
from policygate.webhooks.writeback import MlflowWriteBack

log = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("6f1c2a52-5a0e-4f51-9d7e-3b1f0c2d9a11")
RECOVERY_WINDOW = timedelta(days=1)


def decision_id_for(delivery_key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, delivery_key))


@dataclass(frozen=True)
class Job:
    key: str  # "mlflow:<delivery id>" or "eventgrid:<event id>"
    source: str  # mlflow | eventgrid
    event: str
    ref: str
    stage: str
    requested_by: str
    alias: str | None = None

    @property
    def record_id(self) -> str:
        return f"delivery:{self.key}"


class WebhookWorker:
    def __init__(
        self,
        service: DecisionService,
        writeback: MlflowWriteBack | None = None,
        *,
        enforce: bool = False,
        maxsize: int = 1000,
        threads: int = 2,
        recovery_interval_s: float = 30.0,
    ) -> None:
        self.service = service
        self.writeback = writeback
        self.enforce = enforce
        self.queue: queue.Queue[Job | None] = queue.Queue(maxsize=maxsize)
        self.threads = threads
        self.recovery_interval_s = recovery_interval_s
        self._inflight: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    # -- intake -----------------------------------------------------------------
    def seen(self, job: Job) -> bool:
        return self.service.log.get(job.record_id) is not None

    def accept(self, job: Job) -> str:
        """Record the delivery, then queue it. Returns accepted | duplicate."""
        result = self._accept(job)
        self.service.metrics.webhook_deliveries.labels(job.source, result).inc()
        return result

    def _accept(self, job: Job) -> str:
        if self.seen(job):
            return "duplicate"
        try:
            self.service.log.append("delivery", job.record_id, {"delivery": asdict(job)}, model_ref=job.ref)
        except LogError:
            if self.seen(job):  # a concurrent retry of the same delivery won the race
                return "duplicate"
            raise
        self._enqueue(job)
        return "accepted"

    def _enqueue(self, job: Job) -> None:
        with self._lock:
            if job.key in self._inflight:
                return
            try:
                self.queue.put_nowait(job)
            except queue.Full:
                log.warning(
                    "webhook queue full; delivery %s stays recorded and is picked up by recovery", job.key
                )
                return
            self._inflight.add(job.key)

    # -- processing -------------------------------------------------------------
    def start(self) -> None:
        for n in range(self.threads):
            t = threading.Thread(target=self._run, name=f"webhook-worker-{n}", daemon=True)
            t.start()
            self._workers.append(t)
        t = threading.Thread(target=self._recover_loop, name="webhook-recovery", daemon=True)
        t.start()
        self._workers.append(t)

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        for _ in range(self.threads):
            try:
                self.queue.put(None, timeout=1)
            except queue.Full:
                break
        for t in self._workers:
            t.join(timeout=timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            job = self.queue.get()
            if job is None:
                return
            try:
                self.process(job)
            except Exception:  # noqa: BLE001 - the delivery stays recorded; recovery retries it
                log.exception("webhook job %s failed; recovery will retry", job.key)
            finally:
                with self._lock:
                    self._inflight.discard(job.key)

    def process(self, job: Job) -> None:
        decision_id = decision_id_for(job.key)
        existing = self.service.log.get(decision_id)
        if existing is None:
            target = Target.model_validate({"stage": job.stage})
            decision = self.service.decide(parse(job.ref), target, job.requested_by, decision_id=decision_id)
        else:
            from policygate.decisions.model import Decision

            decision = Decision.model_validate(existing["decision"])
        log.info("webhook %s %s -> %s: %s", job.event, job.ref, job.stage, decision.outcome)
        if job.source != "mlflow" or self.writeback is None:
            return
        subject = decision.subject or {}
        name, version = subject.get("name") or parse(job.ref).name, subject.get("version")
        if not version:
            return
        self.writeback.tag(name, version, decision)
        removed = self.enforce and job.alias and not decision.allow
        if removed and self.writeback.remove_alias_if_current(name, version=version, alias=str(job.alias)):
            self.service.log.append(
                "enforcement",
                f"enforcement:{decision.decision_id}",
                {
                    "enforcement": {
                        "action": "alias_removed",
                        "alias": job.alias,
                        "decision_id": decision.decision_id,
                    }
                },
                model_ref=job.ref,
            )

    # -- recovery ---------------------------------------------------------------
    def recover(self) -> int:
        """Re-queue recorded deliveries of the last day that have no decision yet."""
        since = datetime.now(UTC) - RECOVERY_WINDOW
        pending = 0
        for record in self.service.log.query(kind="delivery", since=since, limit=1000):
            job = Job(**_job_fields(record.get("delivery") or {}))
            if self.service.log.get(decision_id_for(job.key)) is None:
                self._enqueue(job)
                pending += 1
        return pending

    def _recover_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.recover()
            except Exception:  # noqa: BLE001 - recovery must never kill the service
                log.exception("webhook recovery pass failed")
            self._stop.wait(self.recovery_interval_s)


def _job_fields(data: dict[str, Any]) -> dict[str, Any]:
    return {k: data.get(k) for k in Job.__dataclass_fields__}
