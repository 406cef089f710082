"""Hot reload (``policygate serve --watch``): a changed policy directory is checked, then swapped in.

The serving OPA never reads the directory itself. Every ``interval_s`` the watcher looks at the
files (and the rule examples); on a change it loads them the way start-up does
(:func:`policygate.policy.load.load_policy`: every check, then a new OPA on a private copy),
pushes the active waivers to that OPA, and only then lets the engine serve from it. The old OPA
stops after queries in flight had time to finish. A change that fails any check is refused:
the previous policy keeps deciding, ``/readyz`` answers 503 naming file, line and problem, and the
refusal is logged at ERROR until the files are fixed.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from policygate.config.paths import default_examples_dir
from policygate.engine.opa import OpaEngine
from policygate.engine.runner import CheckError
from policygate.engine.supervisor import Restore
from policygate.policy.files import Files, snapshot
from policygate.policy.load import load_policy
from policygate.timeutil import now_iso

log = logging.getLogger(__name__)

INTERVAL_S = 0.25
_SETTLE_S = 0.05
_SETTLE_TRIES = 20


@dataclass(frozen=True)
class PolicyState:
    """What the watcher last established; ``errors`` set means the files on disk were refused."""

    policy_dir: str
    revision: str | None = None
    errors: list[CheckError] = field(default_factory=list)
    warnings: list[CheckError] = field(default_factory=list)
    since: str | None = None
    reloaded_at: str | None = None

    @property
    def ready(self) -> bool:
        """The files on disk are what decides (not yet known at start-up, or refused: not ready)."""
        return self.revision is not None and not self.errors

    @property
    def error(self) -> str | None:
        return "; ".join(str(e) for e in self.errors) if self.errors else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy_dir": self.policy_dir,
            "ready": self.ready,
            "revision": self.revision,
            "error": self.error,
            "errors": [asdict(e) for e in self.errors],
            "warnings": [asdict(e) for e in self.warnings],
            "since": self.since,
            "reloaded_at": self.reloaded_at,
        }


def files_digest(files: Files) -> str:
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
    return h.hexdigest()


class PolicyWatcher:
    """Keeps the engine serving the checked files on disk; a refused change keeps the previous policy."""

    def __init__(
        self,
        engine: OpaEngine,
        binary: str,
        policy_dir: Path,
        *,
        examples_dir: Path | None = None,
        interval_s: float = INTERVAL_S,
        on_reload: Callable[[], None] | None = None,
        restore: Restore | None = None,
    ) -> None:
        self.engine = engine
        self.binary = binary
        self.policy_dir = policy_dir
        self.examples_dir = examples_dir or default_examples_dir(policy_dir)
        self.interval_s = interval_s
        self.on_reload = on_reload
        self.restore = restore
        self.state = PolicyState(str(policy_dir))
        self.reloads = 0  # changes swapped in, for tests and logs
        self._digest: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retiring: list[tuple[threading.Timer, Callable[[], None]]] = []

    def start(self) -> PolicyWatcher:
        # What serves now was checked at start-up from these files.
        self._digest = files_digest(self._files())
        self.state = PolicyState(str(self.policy_dir), self.engine.cached_revision(), reloaded_at=now_iso())
        self._thread = threading.Thread(target=self._run, name="policygate-watch", daemon=True)
        self._thread.start()
        log.info("watching %s (and examples in %s) for policy changes", self.policy_dir, self.examples_dir)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        # OPAs still waiting to retire stop now: nothing else would (uvicorn ends the process by
        # re-raising SIGTERM, so no atexit handler runs)
        for timer, retire in self._retiring:
            timer.cancel()
            retire()
        self._retiring.clear()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.poll()
            except Exception:  # a watcher must outlive any one bad round
                log.exception("policy watch on %s failed; retrying", self.policy_dir)

    def _files(self) -> Files:
        files = snapshot(self.policy_dir)
        if self.examples_dir.is_dir():
            files.update(snapshot(self.examples_dir))
        return files

    def poll(self) -> None:
        """One round: on a change of the files, load them and swap them in (or refuse them)."""
        files = self._files()
        if files_digest(files) == self._digest:
            return
        detected = time.monotonic()
        files = self._settle(files)
        self._digest = files_digest(files)
        self._process(detected)

    def _settle(self, files: Files) -> Files:
        """Wait out a write in progress: the same bytes twice in a row (bounded)."""
        for _ in range(_SETTLE_TRIES):
            time.sleep(_SETTLE_S)
            again = self._files()
            if again == files:
                break
            files = again
        return files

    def _process(self, detected: float) -> None:
        before = self.state.revision
        report, candidate = load_policy(
            self.binary,
            self.policy_dir,
            self.examples_dir,
            timeout_s=self.engine.timeout_s,
            engine=self.engine.kind,  # a reload compiles in process too when that is what serves
        )
        if candidate is None:
            self.state = PolicyState(
                str(self.policy_dir), before, report.errors, [], now_iso(), self.state.reloaded_at
            )
            log.error(
                "policy change refused, revision %s keeps deciding: %s",
                before,
                "; ".join(str(e) for e in report.errors[:10]),
            )
            return
        self._swap(candidate)
        self.reloads += 1
        self.state = PolicyState(str(self.policy_dir), report.revision, [], [], None, now_iso())
        log.info(
            "policy reloaded: revision %s (was %s), serving %.0f ms after the change was seen",
            report.revision,
            before,
            (time.monotonic() - detected) * 1000,
        )
        if self.on_reload is not None:
            self.on_reload()

    def _swap(self, candidate: OpaEngine) -> None:
        retired: list[Callable[[], None]] = []

        def swap() -> None:
            retired.append(self.engine.adopt(candidate))

        if self.restore is not None:
            self.restore(candidate, swap)
        if not retired:  # no waivers to hand over, or the push failed: serve the checked policy anyway
            swap()
        # queries in flight on the old OPA get their full timeout before it stops
        timer = threading.Timer(self.engine.timeout_s + 1, retired[0])
        timer.daemon = True
        timer.start()
        self._retiring.append((timer, retired[0]))
