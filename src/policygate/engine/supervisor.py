"""Self-healing for the managed OPA: a process that ends (killed, crashed) is started again on the
same checked copy of the policies and with the same secret; the waivers go into the new process
before any decision is sent to it. A start that fails is tried again with backoff (0.5 s doubling
to 10 s).

While it is down every decision is ``error`` (fail closed); ``down_for()`` lets ``/readyz`` name it
and ``/healthz`` tell an orchestrator when restarting does not help.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from policygate.engine.errors import EngineError
from policygate.engine.opa import OpaEngine

log = logging.getLogger(__name__)

CHECK_S = 0.5
MAX_BACKOFF_S = 10.0

# restore(candidate, then): push the waivers to a freshly started OPA, then run ``then`` (switch to it).
Restore = Callable[[OpaEngine, Callable[[], None]], None]


class OpaSupervisor:
    def __init__(
        self,
        engine: OpaEngine,
        restore: Restore | None = None,
        check_s: float = CHECK_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.restore = restore
        self.check_s = check_s
        self.clock = clock
        self.restarts = 0
        self.failed_starts = 0
        self.down_since: float | None = None
        self._next_try = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="policygate-opa-supervisor", daemon=True)

    def start(self) -> OpaSupervisor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.engine.timeout_s + 20)

    def down_for(self) -> float:
        """Seconds the managed OPA has been down and not brought back (0 when it runs)."""
        since = self.down_since
        return 0.0 if since is None else self.clock() - since

    def _run(self) -> None:
        while not self._stop.wait(self.check_s):
            try:
                self.check()
            except Exception:  # a supervisor must outlive any one bad round
                log.exception("OPA supervisor round failed; trying again")

    def check(self) -> bool:
        """Restart the managed OPA if its process has ended; True when it was restarted."""
        managed = self.engine.managed
        if managed is None:
            return False
        proc = managed.proc  # None: a start that failed left no process
        if proc is not None and proc.poll() is None:
            self.down_since = None
            return False
        now = self.clock()
        if self.down_since is None:
            self.down_since = now
            self.failed_starts = 0
            self._next_try = now
        if now < self._next_try:
            return False
        status = proc.returncode if proc is not None else "not started"
        log.error("the managed OPA is not running (exit status %s); starting it again", status)
        try:
            url = managed.restart()
        except EngineError as exc:
            self.failed_starts += 1
            backoff = min(MAX_BACKOFF_S, self.check_s * 2**self.failed_starts)
            self._next_try = self.clock() + backoff
            log.error("could not restart the managed OPA (again in %.1f s): %s", backoff, exc.message)
            return False
        fresh = OpaEngine(url, self.engine.timeout_s, token=self.engine.token)
        switched: list[bool] = []

        def serve_it() -> None:
            self.engine.reconnect(url)
            switched.append(True)

        if self.restore is not None:
            self.restore(fresh, serve_it)  # the waivers first: a new process has none
        if not switched:  # no restore, or the push failed: serve anyway (no waiver is stricter)
            serve_it()
        fresh.close()
        self.restarts += 1
        self.down_since = None
        log.warning("the managed OPA is back at %s (restart %d)", url, self.restarts)
        return True
