"""Checking an evidence pack offline, with the checkpoint's public key alone (the format:
:mod:`policygate.audit.pack`): each problem names the file or record."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from policygate.audit.pack import (
    CHECKPOINT,
    FORMAT,
    MANIFEST,
    SIGNATURE,
    SIGNED,
    PackError,
    about,
    chain_file,
    read_tar,
)
from policygate.decisions import checkpoint as checkpoints
from policygate.decisions.chain import GENESIS, chain_hash
from policygate.decisions.record import model_spellings
from policygate.evidence import canonical_json, digest
from policygate.integrity import attest
from policygate.policy.revisions import KIND as POLICY_KIND
from policygate.policy.revisions import revision_of_bundle


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    model: str | None = None
    records: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(data: bytes, key: Ed25519PublicKey) -> Verdict:
    """Check a pack with the checkpoint's public key alone: every record about the version proven in the
    signed log, every file's digest matching. Each problem names the file or record."""
    v = Verdict()
    try:
        files = read_tar(data)
    except PackError as exc:
        v.problems.append(str(exc))
        return v
    try:
        manifest = json.loads(files[MANIFEST])
        cp = checkpoints.parse_signed(files[CHECKPOINT].decode("utf-8"), key)
    except KeyError as exc:
        v.problems.append(f"{exc.args[0]}: missing from the pack")
        return v
    except (ValueError, checkpoints.CheckpointError) as exc:
        v.problems.append(f"{CHECKPOINT} or {MANIFEST}: {exc}")
        return v
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        v.problems.append(f"{MANIFEST}: not a {FORMAT} manifest")
        return v
    v.model = str(manifest.get("model"))
    _check_signature(files, key, v)
    try:
        _check_files(files, manifest, v)
        rows = _check_chain(files, manifest, cp, v)
        if rows is None:
            return v
        _check_listing(rows, manifest, v)
        _check_documents(files, rows, manifest, key, v)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:  # malformed: never passes
        v.problems.append(f"the pack is malformed ({type(exc).__name__}: {str(exc)[:200]})")
    return v


def _check_signature(files: dict[str, bytes], key: Ed25519PublicKey, v: Verdict) -> None:
    if SIGNATURE not in files:
        v.notes.append("the manifest is not signed (packed without the checkpoint key)")
        return
    try:
        blob = base64.b64decode(files[SIGNATURE].strip(), validate=True)
        key.verify(blob[4:], SIGNED + files[MANIFEST])
    except (ValueError, InvalidSignature):
        v.problems.append(f"{MANIFEST}: changed after it was signed ({SIGNATURE} does not verify)")


def _check_files(files: dict[str, bytes], manifest: dict[str, Any], v: Verdict) -> None:
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        v.problems.append(f"{MANIFEST}: lists no files")
        return
    for name, expected in sorted(listed.items()):
        if name not in files:
            v.problems.append(f"{name}: removed from the pack")
        elif hashlib.sha256(files[name]).hexdigest() != expected:
            v.problems.append(f"{name}: changed (its SHA-256 differs from the manifest)")
    for name in sorted(set(files) - set(listed) - {MANIFEST, SIGNATURE}):
        v.problems.append(f"{name}: not listed in the manifest (added)")


def _check_chain(
    files: dict[str, bytes], manifest: dict[str, Any], cp: checkpoints.Checkpoint, v: Verdict
) -> dict[int, dict[str, Any]] | None:
    """Walk the segment to the checkpoint: each row's hash recomputed from its body and the row before."""
    try:
        first = int(manifest["segment"]["first"])
    except (KeyError, TypeError, ValueError):
        v.problems.append(f"{MANIFEST}: names no chain segment")
        return None
    rows: dict[int, dict[str, Any]] = {}
    prev: str | None = GENESIS if first == 1 else None
    last_hash = None
    for seq in range(first, cp.size + 1):
        name = chain_file(seq)
        if name not in files:
            v.problems.append(
                f"record {seq} ({name}) is missing: the chain cannot be followed to the checkpoint"
            )
            return None
        try:
            row = json.loads(files[name])
            body = json.loads(row["body"])
            record_hash = str(row["record_hash"])
            row_prev = str(row["prev_hash"])
        except (ValueError, KeyError, TypeError):
            v.problems.append(f"record {seq} ({name}) cannot be read")
            return None
        if prev is not None and row_prev != prev:
            v.problems.append(
                f"record {seq} ({row.get('kind')} {row.get('id')}) does not link to record {seq - 1}: "
                "not from this log"
            )
            return None
        if chain_hash(row_prev, str(row["body"])) != record_hash:
            v.problems.append(
                f"record {seq} ({row.get('kind')} {row.get('id')}) was changed: its hash does not recompute"
            )
            return None
        if body.get("seq") != seq or body.get("kind") != row.get("kind") or body.get("id") != row.get("id"):
            v.problems.append(f"record {seq} ({name}): its seq, kind or id differs from its hashed body")
            return None
        if seq == 1 and checkpoints.origin_of(record_hash) != cp.origin:
            v.problems.append(f"record 1 is not the first record of the log {cp.origin}: another log")
            return None
        rows[seq] = body
        prev = last_hash = record_hash
    if last_hash != cp.head:
        v.problems.append(
            f"the chain segment does not end at the checkpoint's head (record {cp.size}): "
            "its records are not those of the signed log"
        )
        return None
    return rows


def _check_listing(rows: dict[int, dict[str, Any]], manifest: dict[str, Any], v: Verdict) -> None:
    spellings = model_spellings(str(manifest.get("model")))
    found = about(list(rows.items()), spellings)
    listed = {int(r.get("seq", 0)) for r in manifest.get("records") or [] if isinstance(r, dict)}
    for seq in sorted(listed - found):
        v.problems.append(
            f"record {seq}: listed in the manifest as about {v.model} but not in the proven chain "
            "(removed or replaced)"
        )
    for seq in sorted(found - listed):
        v.problems.append(f"record {seq}: names {v.model} but is not listed in the manifest (left out)")
    v.records = len(found & listed)


def _check_documents(
    files: dict[str, bytes],
    rows: dict[int, dict[str, Any]],
    manifest: dict[str, Any],
    key: Ed25519PublicKey,
    v: Verdict,
) -> None:
    by_id = {str(b.get("id")): (seq, b) for seq, b in rows.items()}
    for name in sorted(files):
        if name.startswith("evidence/"):
            found = by_id.get(name.removeprefix("evidence/").removesuffix(".json"))
            if found is None or canonical_json(found[1].get("evidence")) != files[name]:
                v.problems.append(f"{name}: not the evidence of a decision in the proven chain")
                continue
            expected = (found[1].get("decision") or {}).get("evidence_digest")
            if expected and digest(found[1].get("evidence")) != expected:
                v.notes.append(f"{name}: its digest differs from the decision's evidence_digest")
        elif name.startswith("attestations/"):
            try:
                stmt = attest.open_envelope(json.loads(files[name]), key)
                log = stmt["predicate"]["log"]
                seq = int(log["seq"])
                if json.loads(files[chain_file(seq)])["record_hash"] != log["record_hash"]:
                    raise attest.AttestError("it names a record the chain does not hold")
            except (ValueError, KeyError, TypeError, attest.AttestError) as exc:
                v.problems.append(f"{name}: {exc}")
    for entry in manifest.get("policy_records") or []:
        revision, seq = str(entry.get("revision")), int(entry.get("seq", 0))
        body = rows.get(seq) or {}
        kept_files = (body.get(POLICY_KIND) or {}).get("files")
        prefix = f"policy/{revision.removeprefix('sha256:')}/"
        packed = {
            n.removeprefix(prefix): d.decode("utf-8", "replace")
            for n, d in files.items()
            if n.startswith(prefix)
        }
        if body.get("kind") != POLICY_KIND or (body.get(POLICY_KIND) or {}).get("revision") != revision:
            v.problems.append(f"record {seq}: not the policy record of {revision}")
        elif packed != kept_files or revision_of_bundle(packed) != revision:
            v.problems.append(
                f"{prefix}: the files differ from the policy record of {revision} or do not recompute to it"
            )
