"""``serve``'s scheduled audits (POLICYGATE_AUDIT_INTERVAL_S): one run at a time, on a thread of its own,
the first one interval after start-up; a run that fails is logged and the next one comes as planned."""

from __future__ import annotations

import logging
import threading

from policygate.audit.run import Auditor

log = logging.getLogger(__name__)


class AuditSchedule:
    def __init__(self, auditor: Auditor, interval_s: float) -> None:
        self.auditor = auditor
        self.interval_s = interval_s
        self.runs = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> AuditSchedule:
        self._thread = threading.Thread(target=self._loop, name="audit-schedule", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.auditor.run()
            except Exception:  # noqa: BLE001 - a failed run must not end the schedule
                log.exception("scheduled audit run failed; the next one is in %g s", self.interval_s)
            self.runs += 1
