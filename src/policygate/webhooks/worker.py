"""Decide webhook-triggered promotions in the background, durably.

Each accepted delivery is first committed to the decision log (kind
``delivery``); its decision gets a stable id derived from the delivery, so a
retried delivery, a restart or a full queue never loses or duplicates a
decision: a recovery pass re-queues recorded deliveries that have no decision yet.

An MLflow version registered inside its training run (``log_model(registered_model_name=...)``)
arrives while the run is still going: that delivery is not decided yet. It is looked at again with
backoff until the run ends (then decided once, on the finished run's evidence) or until
``run_wait_s`` after it arrived (then an ``error`` decision naming the wait); meanwhile the version
carries ``policygate.<stage>.decision=pending``. A waiting delivery is a recorded delivery without a
decision, so a restart's recovery pass picks it up where it was.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from policygate.decisions.decision import Decision
from policygate.decisions.log import LogError
from policygate.decisions.service import DecisionService, error_reason
from policygate.evidence import EvidenceV1, Target
from policygate.refs import parse
from policygate.timeutil import as_utc, now_iso
from policygate.webhooks.change import ChangeTags, change_of
from policygate.webhooks.writeback import MlflowWriteBack

log = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("6f1c2a52-5a0e-4f51-9d7e-3b1f0c2d9a11")
RECOVERY_WINDOW = timedelta(days=1)
UNFINISHED_RUN = frozenset({"RUNNING", "SCHEDULED"})  # MLflow's run states that are not terminal
FIRST_LOOK_S = 1.0  # the first wait for a running training run; doubled each time, up to:
MAX_LOOK_S = 60.0


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
    received_at: str | None = None  # ISO 8601: when the delivery was recorded (the run wait counts from it)

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
        run_wait_s: float = 3600.0,
        change_tags: ChangeTags | None = None,
    ) -> None:
        self.service = service
        self.change_tags = change_tags  # the MLflow tags naming the change (ticket, run URL); None: none
        self.writeback = writeback
        self.enforce = enforce
        self.queue: queue.Queue[Job | None] = queue.Queue(maxsize=maxsize)
        self.threads = threads
        self.recovery_interval_s = recovery_interval_s
        self._inflight: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self.run_wait_s = run_wait_s
        self._later: list[tuple[float, int, Job]] = []  # (monotonic due time, tie-break, job)
        self._later_cv = threading.Condition()
        self._looks: dict[str, int] = {}  # delivery key -> times its run was found still going
        self._ticket = itertools.count()

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
        job = replace(job, received_at=job.received_at or now_iso())
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
        for loop, name in ((self._recover_loop, "webhook-recovery"), (self._later_loop, "webhook-later")):
            t = threading.Thread(target=loop, name=name, daemon=True)
            t.start()
            self._workers.append(t)

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        with self._later_cv:
            self._later_cv.notify_all()
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
            wait_s = None
            try:
                wait_s = self.process(job)
            except Exception:  # noqa: BLE001 - the delivery stays recorded; recovery retries it
                log.exception("webhook job %s failed; recovery will retry", job.key)
            finally:
                if wait_s is not None:
                    self._look_again(job, wait_s)  # still in flight: recovery leaves it alone
                else:
                    self._looks.pop(job.key, None)
                    with self._lock:
                        self._inflight.discard(job.key)

    def process(self, job: Job) -> float | None:
        """Decide the delivery and write the decision back; or, while its training run is still
        going, say in how many seconds to look again (nothing is decided or written but ``pending``)."""
        decision_id = decision_id_for(job.key)
        existing = self.service.log.get(decision_id)
        if existing is None:
            decided = self._decide(job, decision_id)
            if not isinstance(decided, Decision):
                return decided
            decision = decided
        else:
            decision = Decision.model_validate(existing["decision"])
        log.info("webhook %s %s -> %s: %s", job.event, job.ref, job.stage, decision.outcome)
        self._write_back(job, decision)
        return None

    def _write_back(self, job: Job, decision: Decision) -> None:
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

    def _decide(self, job: Job, decision_id: str) -> Decision | float:
        """The decision, made once on the collected evidence; or seconds to wait for the training run."""
        ref, target = parse(job.ref), Target.model_validate({"stage": job.stage})
        source = self.service.collector.sources.get("mlflow") if job.source == "mlflow" else None
        client = getattr(source, "client", None)  # the MLflow source's client: the version's tags
        change = change_of(client, ref, self.change_tags) if client and self.change_tags else None
        if job.source != "mlflow" or self.run_wait_s <= 0:
            return self.service.decide(ref, target, job.requested_by, decision_id=decision_id, change=change)
        try:
            with self.service.metrics.timed(self.service.metrics.collect_seconds.labels(ref.platform)):
                evidence = self.service.collect(ref, target, job.requested_by, change=change)
        except LogError:
            raise
        except Exception:  # noqa: BLE001 - decide() collects again and records why it could not
            return self.service.decide(ref, target, job.requested_by, decision_id=decision_id, change=change)
        run = evidence.lineage.run
        if run is None or str(run.status or "").upper() not in UNFINISHED_RUN:
            return self.service.evaluate(evidence, decision_id=decision_id, origin="collected")
        waited = time.time() - _epoch(job.received_at)
        if waited >= self.run_wait_s:
            return self._gave_up(evidence, decision_id, f"{run.id} is still {run.status}", waited)
        looks = self._looks.get(job.key, 0)
        self._looks[job.key] = looks + 1
        if looks == 0 and self.writeback is not None and evidence.subject.version:
            self.writeback.pending(evidence.subject.name, evidence.subject.version, job.stage)
        log.info(
            "webhook %s %s -> %s: training run %s is %s; waiting",
            job.event,
            job.ref,
            job.stage,
            run.id,
            run.status,
        )
        return min(FIRST_LOOK_S * 2**looks, MAX_LOOK_S, max(0.0, self.run_wait_s - waited) + 0.05)

    def _gave_up(self, evidence: EvidenceV1, decision_id: str, what: str, waited: float) -> Decision:
        reason = error_reason(
            "run_wait",
            f"training run {what} after {waited:.0f} s; policygate waits at most {self.run_wait_s:g} s "
            "(POLICYGATE_WEBHOOK_RUN_WAIT_S) for the run to finish before deciding: finish or end the "
            "run, then ask again (e.g. policygate check)",
        )
        doc = evidence.to_input()
        return self.service.record(self.service.error(doc, reason, origin="collected"), doc, decision_id)

    def _look_again(self, job: Job, wait_s: float) -> None:
        with self._later_cv:
            heapq.heappush(self._later, (time.monotonic() + wait_s, next(self._ticket), job))
            self._later_cv.notify()

    def _later_loop(self) -> None:
        """Put waiting deliveries back on the queue when they are due."""
        with self._later_cv:
            while not self._stop.is_set():
                now = time.monotonic()
                while self._later and self._later[0][0] <= now:
                    job = heapq.heappop(self._later)[2]
                    try:
                        self.queue.put_nowait(job)
                    except queue.Full:  # recovery picks it up later
                        with self._lock:
                            self._inflight.discard(job.key)
                self._later_cv.wait(min(1.0, self._later[0][0] - now) if self._later else 1.0)

    @property
    def waiting(self) -> int:
        """Deliveries waiting for their training run to finish."""
        return len(self._later)

    # -- recovery ---------------------------------------------------------------
    def recover(self) -> int:
        """Re-queue recorded deliveries that have no decision yet (of the last day, or of the run
        wait and an hour when that is longer)."""
        window = max(RECOVERY_WINDOW, timedelta(seconds=self.run_wait_s) + timedelta(hours=1))
        since = datetime.now(UTC) - window
        pending = 0
        for record in self.service.log.query(kind="delivery", since=since, limit=1000):
            job = Job(**_job_fields(record.get("delivery") or {}))
            if job.received_at is None:  # recorded before deliveries kept it
                job = replace(job, received_at=record.get("recorded_at"))
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


def _epoch(iso_time: str | None) -> float:
    """Seconds since the epoch of an ISO 8601 time (now when missing or unreadable)."""
    try:
        when = as_utc(datetime.fromisoformat(str(iso_time)))
    except ValueError:
        return time.time()
    return when.timestamp() if when is not None else time.time()
