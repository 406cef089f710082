"""Witnesses: another party, with its own key and store, that countersigns a checkpoint only when it
extends the last one it countersigned for that log, so that a log cut and re-signed by someone
holding the database *and* the service's key is still refused.

The exchange follows C2SP tlog-witness: ``POST /add-checkpoint`` with the body ::

    old <size the witness last countersigned>
    <proof line>...
    <blank line>
    <the signed checkpoint>

answered 200 with a ``cosignature/v1`` line, 409 (``text/x.tlog.size``: the witness's size) when
``old`` is not what it holds, 403 for a checkpoint no trusted log key signed, 422 when the proof
does not show the extension, 400 for a malformed request. Where policygate differs: the log is a
hash chain, not a Merkle tree, so the proof lines are the records themselves (base64 of each stored
record body after ``old``, in order); the witness recomputes each record's hash from the previous
one (a list of digests alone would prove nothing, since a record's hash covers its whole body), so
it reads the records it witnesses. The first checkpoint of a log it has not seen (``old 0``, no
proof) is taken on trust, as C2SP witnesses do.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select

from policygate.decisions.chain import GENESIS, chain_hash
from policygate.decisions.checkpoint import Checkpoint, CheckpointError, cosign, parse_signed
from policygate.decisions.log import DecisionLog
from policygate.decisions.schema import Record
from policygate.errors import PolicygateError

log = logging.getLogger(__name__)

SIZE_TYPE = "text/x.tlog.size"
MAX_PROOF_LINES = 100_000


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


class Witness:
    """The witness's side: trusted log keys, its own signing key and name, and a store: per log origin
    a directory of the checkpoints it countersigned (``<size>.txt``, each created once, never replaced);
    the largest is what it holds. One process per store."""

    def __init__(
        self, key: Ed25519PrivateKey, name: str, store: Path, log_keys: list[Ed25519PublicKey]
    ) -> None:
        self.key, self.name, self.store, self.log_keys = key, name, store, log_keys
        self.store.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def _dir(self, origin: str) -> Path:
        return self.store / origin.replace("/", "_")

    def _parse(self, text: str) -> Checkpoint | None:
        for key in self.log_keys:
            try:
                return parse_signed(text, key)
            except CheckpointError:
                continue
        return None

    def state(self, origin: str) -> Checkpoint | None:
        """The newest checkpoint of ``origin`` it countersigned (None: it never saw that log)."""
        sizes = [int(p.stem) for p in self._dir(origin).glob("*.txt") if p.stem.isdigit()]
        if not sizes:
            return None
        newest = self._dir(origin) / f"{max(sizes)}.txt"
        cp = self._parse(newest.read_text(encoding="utf-8"))
        if cp is None:  # never start over on trust: the witness's own record must be readable
            raise CheckpointError(f"the witness's store holds {newest}, signed by no trusted log key")
        return cp

    def add_checkpoint(self, request: str) -> Answer:
        head, sep, note = request.partition("\n\n")
        lines = head.split("\n")
        if not sep or not lines[0].startswith("old "):
            return Answer(400, "expected 'old <size>', proof lines, a blank line, the checkpoint\n")
        try:
            old = int(lines[0][4:])
            proof = [base64.b64decode(line, validate=True).decode() for line in lines[1:] if line]
        except (ValueError, UnicodeDecodeError):
            return Answer(400, "the old size or a proof line is malformed\n")
        if len(proof) > MAX_PROOF_LINES:
            return Answer(400, f"at most {MAX_PROOF_LINES} proof lines\n")
        try:
            cp = self._parse(note)
        except CheckpointError as exc:
            return Answer(400, f"{exc}\n")
        if cp is None:
            return Answer(403, "the checkpoint is not signed by a log key this witness trusts\n")
        with self._lock:
            try:
                known = self.state(cp.origin)
            except (CheckpointError, OSError, UnicodeDecodeError) as exc:
                log.error("witness: %s", exc)
                return Answer(500, "the witness cannot read its own store\n")
            size = known.size if known is not None else 0
            if old != size:
                return Answer(409, f"{size}\n", SIZE_TYPE)
            if cp.size < size:
                return Answer(400, f"the checkpoint ({cp.size}) is older than the one witnessed ({size})\n")
            if known is not None or proof:
                problem = extension_proof_problem(known, cp, proof)
                if problem is not None:
                    log.error("witness: refused checkpoint %s of %s: %s", cp.size, cp.origin, problem)
                    return Answer(422, f"{problem}\n")
            line = cosign(cp, self.key, self.name)
            if known is None or cp.size > known.size:
                self._dir(cp.origin).mkdir(exist_ok=True)
                fd = os.open(
                    self._dir(cp.origin) / f"{cp.size}.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644
                )
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(note.rstrip("\n") + "\n" + line)
                    fh.flush()
                    os.fsync(fh.fileno())
        log.info("witness: cosigned checkpoint %s of %s", cp.size, cp.origin)
        return Answer(200, line)


def extension_proof_problem(known: Checkpoint | None, cp: Checkpoint, bodies: list[str]) -> str | None:
    """Why the records ``bodies`` do not lead from ``known`` (None: the genesis) to ``cp``."""
    size, prev = (known.size, known.head) if known is not None else (0, GENESIS)
    if len(bodies) != cp.size - size:
        return f"{len(bodies)} records sent, but {cp.size - size} lie between record {size} and {cp.size}"
    for n, body in enumerate(bodies, start=size + 1):
        try:
            seq = json.loads(body).get("seq")
        except (ValueError, AttributeError):
            seq = None
        if seq != n:
            return f"the proof's record {n} is not record {n}"
        prev = chain_hash(prev, body)
    if prev != cp.head:
        return (
            f"the log does not extend the checkpoint witnessed at record {size}: records "
            f"{size + 1}..{cp.size} do not lead to the checkpoint's hash (cut and rewritten)"
        )
    return None


def bodies_between(log_: DecisionLog, after: int, upto: int) -> list[str]:
    """The stored bodies of records ``after``+1 .. ``upto``, in order (a witness's proof)."""
    stmt = select(Record.body).where(Record.seq > after, Record.seq <= upto).order_by(Record.seq)
    with log_.engine.connect() as conn:
        return [str(b) for b in conn.execute(stmt).scalars()]


class WitnessRefused(PolicygateError):
    """The witness answered, and refused the checkpoint (the log does not extend what it saw)."""


class WitnessClient:
    """``POLICYGATE_CHECKPOINT_WITNESS_URL``: pushes each new checkpoint with the records since the
    witness's last one; returns its cosignature line(s)."""

    def __init__(self, url: str, log_: DecisionLog, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/") + "/add-checkpoint"
        self.log, self.timeout_s = log_, timeout_s
        self.size: int | None = None  # what the witness holds for this log, once known

    def cosign(self, cp: Checkpoint, signed: str, since: int) -> str:
        """The witness's cosignature of ``signed`` (the checkpoint ``cp``); ``since``: the size it is
        presumed to hold. WitnessRefused when it refuses; requests' errors when it cannot be reached."""
        old = self.size if self.size is not None else since
        for _ in range(3):
            if old > cp.size:
                raise WitnessRefused(f"the witness saw record {old}, but the log ends at {cp.size}")
            proof = [] if old == 0 and self.size is None else bodies_between(self.log, old, cp.size)
            lines = [f"old {old}", *(base64.b64encode(b.encode()).decode() for b in proof)]
            resp = requests.post(
                self.url, data=("\n".join(lines) + "\n\n" + signed).encode(), timeout=self.timeout_s
            )
            if resp.status_code == 200:
                self.size = cp.size
                return "".join(f"{line}\n" for line in resp.text.splitlines() if line.startswith("\u2014 "))
            if resp.status_code == 409 and resp.headers.get("content-type", "").startswith(SIZE_TYPE):
                old = int(resp.text.strip())
                self.size = old if old else None
                continue
            self.size = None
            raise WitnessRefused(f"HTTP {resp.status_code}: {resp.text.strip()[:300]}")
        raise WitnessRefused("the witness's size kept changing")
