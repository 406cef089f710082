"""Keep OPA's ``data.policygate_waivers`` equal to the active waivers in the decision log.

The active set is pushed (``PUT /v1/data/policygate_waivers``) when the service starts, after every
change, and every ``REFRESH_S`` seconds (so replicas pick up each other's changes, and expired waivers
drop out); a reloaded OPA (``serve --watch``) gets it before it serves.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from policygate.decisions.log import DecisionLog
from policygate.engine.errors import EngineError
from policygate.engine.opa import OpaEngine
from policygate.policy.waivers import (
    DATA_PATH,
    REFRESH_OVERLAP,
    REFRESH_S,
    Waiver,
    WaiverState,
    load_state,
    waiver_records,
)

log = logging.getLogger(__name__)


def push(engine: OpaEngine, waivers: Iterable[Waiver]) -> None:
    """Replace ``data.policygate_waivers`` in OPA with these waivers."""
    engine.put_data(DATA_PATH, [w.policy_doc() for w in waivers])


class WaiverSync:
    """Keeps one OPA's ``data.policygate_waivers`` equal to the active waivers in the log.

    ``start`` pushes the set at once and then refreshes every ``interval_s`` in a daemon
    thread, reading only recent waiver records; ``refresh`` (after a change) does the same
    now. All pushes of one engine go through this object, under a lock, so an older set
    never overwrites a newer one.
    """

    def __init__(self, engine: OpaEngine, log_: DecisionLog, interval_s: float = REFRESH_S) -> None:
        self.engine = engine
        self.log = log_
        self.interval_s = interval_s
        self.state = WaiverState()
        self.pushed: list[str] = []
        self.last_error: str | None = None
        self._read_at: datetime | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> WaiverSync:
        self.refresh_quietly()
        self._thread = threading.Thread(target=self._run, name="policygate-waivers", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.refresh_quietly()

    def refresh(self) -> list[Waiver]:
        """Read new waiver records and push the active set; raises EngineError / LogError."""
        with self._lock:
            now = datetime.now(UTC)
            since = self._read_at - REFRESH_OVERLAP if self._read_at else None
            for record in waiver_records(self.log, since):
                self.state.apply(record)
            self._read_at = now
            active = self.state.active(now)
            push(self.engine, active)
            self.pushed = [w.id for w in active]
            self.last_error = None
            return active

    def refresh_quietly(self) -> None:
        try:
            self.refresh()
        except Exception as exc:  # noqa: BLE001 - a failed push must not stop the service; it keeps retrying
            self.last_error = str(exc)
            log.warning("could not push waivers to OPA at %s: %s", self.engine.url, exc)

    def repush(self, target: OpaEngine | None = None, then: Callable[[], None] | None = None) -> None:
        """Push the active set as last read, without reading the log, to ``target`` (default: this
        sync's engine), then run ``then`` under the same lock: a reloaded OPA gets the waivers before
        it serves (``serve --watch`` hands over with ``then``), and no older set can follow."""
        try:
            with self._lock:
                active = self.state.active(datetime.now(UTC))
                push(target or self.engine, active)
                self.pushed = [w.id for w in active]
                if then is not None:
                    then()
        except EngineError as exc:
            self.last_error = str(exc)
            log.warning("could not push waivers to OPA at %s: %s", self.engine.url, exc)


def publish(engine: OpaEngine, log_: DecisionLog, sync: WaiverSync | None = None) -> list[str]:
    """After a change: push the active set to ``engine`` now (through ``sync``, the running
    service's WaiverSync, when there is one: all pushes to one OPA go through it)."""
    if sync is not None:
        return [w.id for w in sync.refresh()]
    active = load_state(log_).active(datetime.now(UTC))
    push(engine, active)
    return [w.id for w in active]


def publish_to(url: str, log_: DecisionLog, *, timeout_s: float, token: str | None = None) -> list[str]:
    """After a change: push the active set now to an external OPA (POLICYGATE_OPA_URL), which no
    running service of this process pushes to (theirs pick the change up within REFRESH_S);
    EngineError when it cannot be reached."""
    engine = OpaEngine(url, timeout_s, token=token)
    try:
        return publish(engine, log_)
    finally:
        engine.close()


__all__ = ["WaiverSync", "publish", "publish_to", "push"]
