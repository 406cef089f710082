"""``serve``'s checkpoint writer: signs the log's checkpoints into a directory, append-only.

Before signing, it proves the log still extends the newest checkpoint in the directory (same first
record, same hash at that checkpoint's size, an unbroken chain from there to the head). When it does
not, the writer refuses to sign, logs at ERROR, and ``tampered`` says why (``/readyz`` names
``decision_log_tampered``; ``policygate_checkpoint_refusals`` counts the refusals), until an operator
records a checkpoint reset (``policygate log checkpoint-reset``). With a witness, each new checkpoint
also carries the witness's cosignature; a witness that refuses it marks the log tampered too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from policygate.decisions.checkpoint import Checkpoint, current, extension_problem, sign
from policygate.decisions.checkpoint_dir import Stored, acknowledged, age, read_dir, write_new
from policygate.decisions.log import DecisionLog
from policygate.decisions.witness import WitnessClient, WitnessRefused

log = logging.getLogger(__name__)

REFUSED_RETRY_S = 5.0  # while refusing: look for the operator's reset this often
ERROR_EVERY_S = 60.0  # ... and say so at ERROR at least this often


class CheckpointWriter:
    """A signed checkpoint to ``out`` every ``every`` records or ``interval_s`` seconds (whichever
    comes first, checked once a second): ``checkpoint-<size>.txt`` (created, never replaced) and
    ``latest.txt`` (its copy)."""

    def __init__(
        self,
        log_: DecisionLog,
        key: Ed25519PrivateKey,
        out: Path,
        every: int,
        interval_s: float,
        *,
        witness: WitnessClient | None = None,
        refused: Callable[[str], None] | None = None,
    ) -> None:
        self.log, self.key, self.out, self.every, self.interval_s = log_, key, out, every, interval_s
        self.witness = witness
        self.on_refused = refused  # for the metric: own | witness refusal, or unreachable witness
        self.written: int | None = None
        self.last: Stored | None = None
        self.tampered: str | None = None  # why signing is refused now (None: it is not)
        self.refused_by: str | None = None  # own (the log does not extend the last) | witness
        self._said: tuple[str, float] | None = None
        self._at = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="policygate-checkpoints", daemon=True)

    def start(self) -> CheckpointWriter:
        self.out.mkdir(parents=True, exist_ok=True)
        stored, problems = read_dir(self.out, self.key.public_key())
        for problem in problems:
            log.error("checkpoint directory %s: %s", self.out, problem)
        self.last = stored[-1] if stored else None
        self.write()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self.write()  # the last state, on the way out
        except Exception as exc:  # noqa: BLE001 - a failed last checkpoint must not stop shutdown
            log.warning("could not write the last checkpoint: %s", exc)

    def _run(self) -> None:
        refused_at = 0.0
        while not self._stop.wait(1.0):
            try:
                if self.tampered is not None:
                    if time.monotonic() - refused_at >= REFUSED_RETRY_S:
                        refused_at = time.monotonic()
                        self.write()
                    continue
                size, head = self.log.head()
                due = self.written is None or size - self.written >= self.every
                if self._cut(size, head) or (
                    size != self.written and (due or time.monotonic() - self._at >= self.interval_s)
                ):
                    self.write()
            except Exception as exc:  # noqa: BLE001 - keep trying; the chain itself is unaffected
                log.warning("could not write a checkpoint to %s: %s", self.out, exc)

    def _cut(self, size: int, head: str) -> bool:
        """Whether the log is shorter than the newest checkpoint, or has another record at its size:
        checked now, not at the next interval."""
        last = self.last.checkpoint if self.last is not None else None
        if last is None or last.size == 0:
            return False
        return size < last.size or (size == last.size and head != last.head)

    def write(self) -> Checkpoint | None:
        """Sign and store the log's checkpoint, if it extends the last one; None when refused or
        when nothing changed since."""
        with self._lock:
            return self._write()

    def _write(self) -> Checkpoint | None:
        cp = current(self.log)
        last = self.last.checkpoint if self.last is not None else None
        if last is not None:
            problem = self._extension(last)
            if problem is not None:
                assert self.last is not None
                reset = acknowledged(self.log, last, self.key.public_key())
                if reset is None:
                    self._refuse("own", f"{problem} (newest signed checkpoint: {self.last.path.name})")
                    return None
                log.warning(
                    "checkpoints: the log no longer extends %s, as the checkpoint reset of record %s "
                    "acknowledged (by %s): signing again",
                    self.last.path.name,
                    reset.get("seq"),
                    (reset.get("checkpoint_reset") or {}).get("by"),
                )
                cp = self._after(last)
            elif cp.size == last.size:  # nothing new to sign
                if self.refused_by == "own":
                    self._clear()
                self.written = cp.size
                return None
        text = sign(cp, self.key)
        witness_problem = None
        if self.witness is not None:
            line, witness_problem = self._cosignature(cp, text, last)
            text += line
        self.last = Stored(write_new(self.out, cp, text), cp, text)
        self.written, self._at = cp.size, time.monotonic()
        if witness_problem is None:
            self._clear()
        return cp

    def _clear(self) -> None:
        if self.tampered is not None:
            log.warning("checkpoints: signing again (%s)", self.last.path.name if self.last else "-")
        self.tampered = self.refused_by = None

    def _extension(self, last: Checkpoint) -> str | None:
        """Why the log does not extend ``last`` now (None: it does, with an intact chain to its head)."""
        problem = extension_problem(self.log, last)
        if problem is not None:
            return problem
        walked = self.log.verify(after=(last.size, last.head))
        if not walked.ok:
            return f"after record {last.size} of the last checkpoint: {walked.problem}"
        return None

    def _after(self, last: Checkpoint) -> Checkpoint:
        """The log's checkpoint, timed after ``last`` (its files sort after the abandoned one's)."""
        while True:
            cp = current(self.log)
            if age(cp)[0] > age(last)[0]:
                return cp
            time.sleep(0.2)

    def _cosignature(self, cp: Checkpoint, text: str, last: Checkpoint | None) -> tuple[str, str | None]:
        """The witness's cosignature line ('' without), and why it refused (None: it did not)."""
        assert self.witness is not None
        since = last.size if last is not None and last.origin == cp.origin and last.size <= cp.size else 0
        try:
            return self.witness.cosign(cp, text, since), None
        except WitnessRefused as exc:
            problem = f"the witness refused checkpoint {cp.size}: {exc}"
            self._refuse("witness", problem)
            return "", problem
        except (requests.RequestException, ValueError) as exc:
            log.warning("checkpoint %s: the witness could not be reached: %s", cp.size, type(exc).__name__)
            if self.on_refused is not None:
                self.on_refused("unreachable")
            return "", None

    def _refuse(self, by: str, problem: str) -> None:
        self.tampered, self.refused_by = problem, by
        if self.on_refused is not None:
            self.on_refused(by)
        now = time.monotonic()
        if self._said is None or self._said[0] != problem or now - self._said[1] >= ERROR_EVERY_S:
            self._said = (problem, now)
            log.error(
                "decision_log_tampered: %s; %s. Investigate, then acknowledge with "
                "`policygate log checkpoint-reset` (docs/operations.md)",
                problem,
                "refusing to sign a checkpoint" if by == "own" else "the checkpoint carries no cosignature",
            )
