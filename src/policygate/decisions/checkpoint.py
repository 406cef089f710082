"""Signed checkpoints of the decision log, kept outside the database, so that truncation, a wipe or a
rewrite is detectable: a hash chain alone cannot show records removed from its end.

The text follows the C2SP signed-note / tlog-checkpoint shape::

    policygate-log/<first 16 hex digits of the first record's hash>   (which log: its origin)
    <size: the sequence number of the newest record>
    <that record's hash, hex>
    <time, RFC 3339>

    — <key name> <base64(4-byte key id || Ed25519 signature of the lines above)>

A log *extends* a checkpoint when its first record is the one the origin names and its record
``size`` has the checkpoint's hash; ``policygate log verify --checkpoint FILE --key PUB`` checks
the signature and that, on top of the chain.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from policygate.decisions.log import DecisionLog

log = logging.getLogger(__name__)

ORIGIN_PREFIX = "policygate-log/"
_ED25519 = b"\x01"  # the signature type byte of a signed note's key id
_DASH = "\u2014"


class CheckpointError(ValueError):
    """A checkpoint or key that cannot be read, or a signature that does not verify."""


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    head: str
    time: str

    def body(self) -> bytes:
        return f"{self.origin}\n{self.size}\n{self.head}\n{self.time}\n".encode()


def create_key(out: Path) -> tuple[Path, Path]:
    """A new Ed25519 key: ``out`` (private, PEM, mode 0600) and ``out.pub`` (public, PEM)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private)
    pub = out.with_name(out.name + ".pub")
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return out, pub


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CheckpointError(f"cannot read the signing key {path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"{path} is not an Ed25519 private key (make one: policygate key create)")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise CheckpointError(f"cannot read the public key {path}: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError(f"{path} is not an Ed25519 public key")
    return key


def key_id(name: str, key: Ed25519PublicKey) -> bytes:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(name.encode() + b"\n" + _ED25519 + raw).digest()[:4]


def origin_of(first_record_hash: str) -> str:
    return ORIGIN_PREFIX + first_record_hash[:16]


def current(log_: DecisionLog) -> Checkpoint:
    """The checkpoint of the log as it is now."""
    size, head = log_.head()
    first = log_.first_hash()
    return Checkpoint(origin_of(first or ""), size, head, datetime.now(UTC).isoformat(timespec="seconds"))


def sign(cp: Checkpoint, key: Ed25519PrivateKey, name: str = "policygate") -> str:
    signature = key.sign(cp.body())
    blob = base64.b64encode(key_id(name, key.public_key()) + signature).decode()
    return cp.body().decode() + f"\n{_DASH} {name} {blob}\n"


def parse_signed(text: str, key: Ed25519PublicKey) -> Checkpoint:
    """The checkpoint in ``text`` once its signature verifies with ``key``; CheckpointError otherwise."""
    body, sep, sigs = text.partition("\n\n")
    if not sep:
        raise CheckpointError("not a signed checkpoint: no blank line before the signature")
    lines = body.split("\n")
    if len(lines) != 4 or not lines[0].startswith(ORIGIN_PREFIX):
        raise CheckpointError("not a policygate checkpoint: expected origin, size, hash and time lines")
    try:
        cp = Checkpoint(lines[0], int(lines[1]), lines[2], lines[3])
    except ValueError:
        raise CheckpointError("not a policygate checkpoint: the size is not a number") from None
    for line in sigs.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != _DASH:
            continue
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except ValueError:
            continue
        if len(blob) != 68 or blob[:4] != key_id(parts[1], key):
            continue
        try:
            key.verify(blob[4:], cp.body())
        except InvalidSignature:
            raise CheckpointError("the checkpoint's signature does not verify: it was altered") from None
        return cp
    raise CheckpointError("the checkpoint has no signature by this key")


def extension_problem(log_: DecisionLog, cp: Checkpoint) -> str | None:
    """Why the log does not extend the checkpoint (None: it does)."""
    size, _ = log_.head()
    first = log_.first_hash()
    if size == 0 or first is None:
        return f"the log is empty, but the checkpoint of {cp.time} saw {cp.size} records: it was wiped"
    if origin_of(first) != cp.origin:
        return f"the log's first record is not the one the checkpoint names ({cp.origin}): it was replaced"
    if size < cp.size:
        return (
            f"the log ends at record {size}, but the checkpoint of {cp.time} saw record {cp.size}: "
            f"{cp.size - size} record(s) were removed from its end"
        )
    at = log_.hash_at(cp.size)
    if at != cp.head:
        return f"record {cp.size} differs from the checkpoint of {cp.time}: the log was rewritten"
    return None


class CheckpointWriter:
    """``serve``: a signed checkpoint to ``out`` every ``every`` records or ``interval_s`` seconds
    (whichever comes first, checked once a second): ``checkpoint-<size>.txt`` and ``latest.txt``."""

    def __init__(
        self, log_: DecisionLog, key: Ed25519PrivateKey, out: Path, every: int, interval_s: float
    ) -> None:
        self.log, self.key, self.out, self.every, self.interval_s = log_, key, out, every, interval_s
        self.written: int | None = None
        self._at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="policygate-checkpoints", daemon=True)

    def start(self) -> CheckpointWriter:
        self.out.mkdir(parents=True, exist_ok=True)
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
        while not self._stop.wait(1.0):
            try:
                size, _ = self.log.head()
                due = self.written is None or size - self.written >= self.every
                if size != self.written and (due or time.monotonic() - self._at >= self.interval_s):
                    self.write()
            except Exception as exc:  # noqa: BLE001 - keep trying; the chain itself is unaffected
                log.warning("could not write a checkpoint to %s: %s", self.out, exc)

    def write(self) -> Checkpoint:
        cp = current(self.log)
        text = sign(cp, self.key)
        for name in (f"checkpoint-{cp.size}.txt", "latest.txt"):
            tmp = self.out / f".{name}.tmp"
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, self.out / name)
        self.written, self._at = cp.size, time.monotonic()
        return cp
