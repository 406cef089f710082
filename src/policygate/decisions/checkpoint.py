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

A witness (:mod:`policygate.decisions.witness`) adds its own line to the same note: a C2SP
``cosignature/v1`` (type byte 0x04, key id || 8-byte time || Ed25519 signature of
``cosignature/v1\ntime <t>\n`` + the checkpoint body).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from policygate.decisions.log import DecisionLog
from policygate.errors import InputError

log = logging.getLogger(__name__)

ORIGIN_PREFIX = "policygate-log/"
_ED25519 = b"\x01"  # the signature type byte of a signed note's key id
_COSIGNATURE = b"\x04"  # ... and of a witness's cosignature/v1
_DASH = "\u2014"


class CheckpointError(InputError):
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


def key_id(name: str, key: Ed25519PublicKey, kind: bytes = _ED25519) -> bytes:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(name.encode() + b"\n" + kind + raw).digest()[:4]


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
    cp, sigs = _parse(text)
    for name, blob in sigs:
        if len(blob) != 68 or blob[:4] != key_id(name, key):
            continue
        try:
            key.verify(blob[4:], cp.body())
        except InvalidSignature:
            raise CheckpointError("the checkpoint's signature does not verify: it was altered") from None
        return cp
    raise CheckpointError("the checkpoint has no signature by this key")


def _parse(text: str) -> tuple[Checkpoint, list[tuple[str, bytes]]]:
    """The checkpoint and its signature lines (name, decoded blob), nothing verified yet."""
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
    found: list[tuple[str, bytes]] = []
    for line in sigs.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != _DASH:
            continue
        try:
            found.append((parts[1], base64.b64decode(parts[2], validate=True)))
        except ValueError:
            continue
    return cp, found


def cosignature_message(cp: Checkpoint, at: int) -> bytes:
    return f"cosignature/v1\ntime {at}\n".encode() + cp.body()


def cosign(cp: Checkpoint, key: Ed25519PrivateKey, name: str, at: int | None = None) -> str:
    """A witness's cosignature/v1 line for ``cp`` (appended to the signed note)."""
    at = int(time.time()) if at is None else at
    signature = key.sign(cosignature_message(cp, at))
    blob = key_id(name, key.public_key(), _COSIGNATURE) + at.to_bytes(8, "big") + signature
    return f"{_DASH} {name} {base64.b64encode(blob).decode()}\n"


def cosigned_at(text: str, witness: Ed25519PublicKey) -> int | None:
    """When the witness with key ``witness`` cosigned the checkpoint in ``text`` (None: it did not,
    or its cosignature does not verify)."""
    cp, sigs = _parse(text)
    for name, blob in sigs:
        if len(blob) != 76 or blob[:4] != key_id(name, witness, _COSIGNATURE):
            continue
        at = int.from_bytes(blob[4:12], "big")
        try:
            witness.verify(blob[12:], cosignature_message(cp, at))
        except InvalidSignature:
            return None
        return at
    return None


def extension_problem(log_: DecisionLog, cp: Checkpoint) -> str | None:
    """Why the log does not extend the checkpoint (None: it does; every log extends an empty one)."""
    if cp.size == 0:
        return None
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
