"""Self-healing for the managed OPA: a process that ends (killed, crashed) is started again on the
same checked copy of the policies and with the same secret, and the waivers go back into it.

While it is down every decision is ``error`` (fail closed); ``down_for()`` lets ``/healthz`` tell an
orchestrator when restarting does not help.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from policygate.engine.opa import EngineError, OpaEngine

log = logging.getLogger(__name__)

CHECK_S = 0.5


class OpaSupervisor:
    def __init__(
        self, engine: OpaEngine, on_restart: Callable[[], None] | None = None, check_s: float = CHECK_S
    ) -> None:
        self.engine = engine
        self.on_restart = on_restart
        self.check_s = check_s
        self.restarts = 0
        self.down_since: float | None = None
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
        return 0.0 if since is None else time.monotonic() - since

    def _run(self) -> None:
        while not self._stop.wait(self.check_s):
            try:
                self.check()
            except Exception:  # a supervisor must outlive any one bad round
                log.exception("OPA supervisor round failed; trying again")

    def check(self) -> bool:
        """Restart the managed OPA if its process has ended; True when it was restarted."""
        managed = self.engine.managed
        proc = managed.proc if managed is not None else None
        if managed is None or proc is None or proc.poll() is None:
            self.down_since = None
            return False
        if self.down_since is None:
            self.down_since = time.monotonic()
        log.error("the managed OPA exited (status %s); starting it again", proc.returncode)
        try:
            url = managed.restart()
        except EngineError as exc:
            log.error("could not restart the managed OPA: %s", exc.message)
            return False
        self.engine.reconnect(url)
        self.restarts += 1
        self.down_since = None
        log.warning("the managed OPA is back at %s (restart %d)", url, self.restarts)
        if self.on_restart is not None:
            self.on_restart()  # e.g. push the waivers again: a new process has none
        return True
