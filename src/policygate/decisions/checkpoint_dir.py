"""A directory of signed checkpoints, append-only: each ``checkpoint-<size>.txt`` is created once and
never replaced nor deleted by policygate (a size signed again after an acknowledged cut gets
``checkpoint-<size>.<n>.txt``); ``latest.txt`` is a copy of the newest. Read oldest first.

A writer that finds the log no longer extending its newest checkpoint refuses to sign until an
operator records a **checkpoint reset**: a chain record (kind ``checkpoint_reset``) naming the
abandoned checkpoint, why, and who, signed with the checkpoint key itself, so that someone who can
write only the database cannot make the writer accept a cut.
"""

from __future__ import annotations

import base64
import os
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from policygate.decisions.checkpoint import Checkpoint, CheckpointError, parse_signed
from policygate.decisions.log import DecisionLog

FILE = re.compile(r"^checkpoint-\d+(?:\.\d+)?\.txt$")
LATEST = "latest.txt"
RESET_KIND = "checkpoint_reset"
_RESET_V1 = b"policygate-checkpoint-reset/v1\n"


@dataclass(frozen=True)
class Stored:
    """One checkpoint file whose signature verified."""

    path: Path
    checkpoint: Checkpoint
    text: str


def age(cp: Checkpoint) -> tuple[datetime, int]:
    """Where a checkpoint stands in time: its time line, then its size (several a second)."""
    try:
        at = datetime.fromisoformat(cp.time)
    except ValueError:
        at = datetime.min.replace(tzinfo=UTC)
    return (at if at.tzinfo else at.replace(tzinfo=UTC), cp.size)


def _order(s: Stored) -> tuple[tuple[datetime, int], bool]:
    return (age(s.checkpoint), s.path.name != LATEST)  # latest.txt before its own file: that names it


def read_dir(out: Path, key: Ed25519PublicKey) -> tuple[list[Stored], list[str]]:
    """Every checkpoint in ``out`` (``checkpoint-*.txt`` and ``latest.txt``), oldest first, and what
    is wrong with each file that does not verify with ``key``."""
    found: list[Stored] = []
    problems: list[str] = []
    if not out.is_dir():
        return found, problems
    for path in sorted(out.iterdir()):
        if not (FILE.match(path.name) or path.name == LATEST):
            continue
        try:
            text = path.read_text(encoding="utf-8")
            found.append(Stored(path, parse_signed(text, key), text))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path.name}: cannot be read ({type(exc).__name__})")
        except CheckpointError as exc:
            problems.append(f"{path.name}: {exc}")
    found.sort(key=_order)
    return found, problems


def _create(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)  # never replaces a file
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def write_new(out: Path, cp: Checkpoint, text: str) -> Path:
    """Create the checkpoint's own file (the first free name for its size), then copy it to latest.txt."""
    n = 0
    while True:
        path = out / (f"checkpoint-{cp.size}.txt" if n == 0 else f"checkpoint-{cp.size}.{n}.txt")
        try:
            _create(path, text)
            break
        except FileExistsError:
            n += 1
    tmp = out / f".{LATEST}.{os.getpid()}.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out / LATEST)
    return path


def _statement(abandoned: Checkpoint, reason: str) -> bytes:
    return _RESET_V1 + abandoned.body() + reason.encode()


def record_reset(log_: DecisionLog, key: Ed25519PrivateKey, abandoned: str, reason: str, by: str) -> int:
    """Record the operator's acknowledgement that the log no longer extends the signed checkpoint
    ``abandoned`` (its text); returns the record's seq."""
    cp = parse_signed(abandoned, key.public_key())
    signature = base64.b64encode(key.sign(_statement(cp, reason))).decode()
    payload: dict[str, Any] = {
        "checkpoint_reset": {
            "abandoned": abandoned,
            "abandoned_size": cp.size,
            "reason": reason,
            "by": by,
            "signature": signature,
        }
    }
    return log_.append(RESET_KIND, f"cpr-{uuid.uuid4().hex}", payload)


def acknowledged(log_: DecisionLog, cp: Checkpoint, key: Ed25519PublicKey) -> dict[str, Any] | None:
    """The reset record (its body) by which an operator acknowledged that the log need no longer
    extend ``cp``: one signed with ``key`` that abandoned ``cp`` or a newer checkpoint of the log.
    None when there is none."""
    for body in log_.query(kind=RESET_KIND, limit=200):
        reset = body.get("checkpoint_reset")
        if not isinstance(reset, dict):
            continue
        try:
            abandoned = parse_signed(str(reset.get("abandoned")), key)
            key.verify(
                base64.b64decode(str(reset.get("signature")), validate=True),
                _statement(abandoned, str(reset.get("reason", ""))),
            )
        except (CheckpointError, InvalidSignature, ValueError):
            continue
        if age(cp) <= age(abandoned):
            return body
    return None


@dataclass
class DirCheck:
    """``log verify --checkpoint-dir``: what is wrong (tampered), what an operator acknowledged, and
    the checkpoints that verified, oldest first."""

    problems: list[str]
    acknowledged: list[str]
    checked: list[Stored]


def check_dir(
    log_: DecisionLog, out: Path, key: Ed25519PublicKey, witness: Ed25519PublicKey | None = None
) -> DirCheck:
    """Every checkpoint in ``out``, oldest first: signed by ``key``, and extended by the log (or its
    cut acknowledged by a signed checkpoint reset); with ``witness``, the newest countersigned by it."""
    from policygate.decisions.checkpoint import cosigned_at, extension_problem

    stored, problems = read_dir(out, key)
    result = DirCheck(problems, [], [])
    for s in stored:
        problem = extension_problem(log_, s.checkpoint)
        if problem is None:
            result.checked.append(s)
            continue
        reset = acknowledged(log_, s.checkpoint, key)
        if reset is None:
            result.problems.append(f"{s.path.name}: {problem}")
        else:
            r = reset.get("checkpoint_reset") or {}
            result.acknowledged.append(
                f"{s.path.name}: {problem}; acknowledged by the checkpoint reset of record "
                f"{reset.get('seq')} (by {r.get('by')}: {r.get('reason')})"
            )
    if witness is not None and stored:
        newest = stored[-1]
        if cosigned_at(newest.text, witness) is None:
            result.problems.append(f"{newest.path.name}: no valid countersignature by the witness's key")
    return result
