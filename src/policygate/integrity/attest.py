"""Signed attestations of release decisions, for a deploy step to check offline.

An attestation is an in-toto Statement v1 in a DSSE envelope signed with policygate's Ed25519 key
(the key that signs the log's checkpoints). Its subjects are the model's manifest digest and each
artifact file; its predicate is the decision contract with the policy revision, the evidence digest
and the record's place in the log (sequence number and hash). Verifying needs the envelope, the
public key and the files about to be deployed: no service, no MLflow.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from policygate.errors import InputError
from policygate.evidence import ArtifactSignature
from policygate.integrity.manifest import SIGNATURE_FILE, Manifest
from policygate.timeutil import iso, parse_iso

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://policygate.dev/attestation/release-decision/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
MODEL_PREFIX = "model:"
DEFAULT_TTL_S = 86400.0  # POLICYGATE_ATTESTATION_TTL_S


class AttestError(InputError):
    """A decision that cannot be attested, or an envelope that does not verify (the message says why)."""


def not_a_what_if(decision: dict[str, Any]) -> None:
    """AttestError unless ``decision`` was made on collected evidence (a what-if never stands)."""
    if decision.get("evidence_origin") == "supplied":
        raise AttestError(
            f"decision {decision.get('decision_id')} is a what-if on evidence its caller wrote: "
            "only collected release decisions are attested"
        )


def statement(
    record: dict[str, Any], record_hash: str, issued_at: datetime, valid_until: datetime
) -> dict[str, Any]:
    """The in-toto Statement of one recorded release decision (its log body, and its hash), valid
    from ``issued_at`` to ``valid_until``."""
    decision = record.get("decision") or {}
    evidence = record.get("evidence") or {}
    not_a_what_if(decision)
    _not_unverified(decision, evidence)
    artifacts = evidence.get("artifacts")
    if not isinstance(artifacts, dict) or not artifacts.get("digest"):
        raise AttestError(
            f"decision {decision.get('decision_id')} has no artifact manifest in its evidence "
            "(collection.gaps names why): there are no files to attest"
        )
    ref = (decision.get("subject") or {}).get("ref")
    subjects = [{"name": f"{MODEL_PREFIX}{ref}", "digest": {"sha256": _hex(artifacts["digest"])}}]
    subjects += [{"name": f["path"], "digest": {"sha256": f["sha256"]}} for f in artifacts.get("files") or []]
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "decision": decision,
            "policy_revision": decision.get("policy_revision"),
            "evidence_digest": decision.get("evidence_digest"),
            "manifest": {"digest": artifacts["digest"], "size": artifacts.get("size")},
            # the model-signing signature the decision saw (model.sig is not in the manifest)
            "signature": artifacts.get("signature"),
            "log": {
                "seq": record.get("seq"),
                "record_hash": record_hash,
                "recorded_at": record.get("recorded_at"),
            },
            "issued_at": iso(issued_at),
            "valid_until": iso(valid_until),
        },
    }


def _not_unverified(decision: dict[str, Any], evidence: dict[str, Any]) -> None:
    """An allow whose files could not be hashed (INT-003 warned, was waived, or the policy accepts the
    risk) has no manifest a deploy step could check: refused, naming why the files were not read."""
    unverified = evidence.get("artifacts_unverified")
    if isinstance(unverified, dict):
        raise AttestError(
            f"decision {decision.get('decision_id')} was made on model files that were not verified "
            f"(INT-003: {unverified.get('reason')}, {unverified.get('detail')}; "
            f"{unverified.get('bytes_read')} of {unverified.get('size')} bytes read): there is no "
            "manifest to attest"
        )


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what the signature covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def sign(stmt: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """The DSSE envelope of ``stmt``."""
    payload = json.dumps(stmt, sort_keys=True, separators=(",", ":")).encode()
    signature = key.sign(pae(PAYLOAD_TYPE, payload))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": key_id(key.public_key()), "sig": base64.b64encode(signature).decode()}],
    }


def open_envelope(envelope: Any, key: Ed25519PublicKey) -> dict[str, Any]:
    """The statement of an envelope ``key`` signed; AttestError naming what is wrong otherwise."""
    if not isinstance(envelope, dict) or envelope.get("payloadType") != PAYLOAD_TYPE:
        raise AttestError("not a DSSE envelope of an in-toto statement")
    try:
        payload = base64.b64decode(str(envelope.get("payload")), validate=True)
        signatures = [
            base64.b64decode(str(s.get("sig")), validate=True) for s in envelope.get("signatures") or []
        ]
    except (ValueError, AttributeError):
        raise AttestError("the envelope's payload or signature is not base64") from None
    message = pae(PAYLOAD_TYPE, payload)
    for signature in signatures:
        try:
            key.verify(signature, message)
            break
        except InvalidSignature:
            continue
    else:
        raise AttestError("signature: the envelope is not signed by this key (or was changed after signing)")
    try:
        stmt = json.loads(payload)
    except ValueError:
        raise AttestError("the signed payload is not JSON") from None
    if (
        not isinstance(stmt, dict)
        or stmt.get("_type") != STATEMENT_TYPE
        or stmt.get("predicateType") != PREDICATE_TYPE
    ):
        raise AttestError("the signed payload is not a policygate release-decision statement")
    return stmt


@dataclass(frozen=True)
class Verdict:
    ok: bool
    problems: list[str]
    model: str | None


def check(
    stmt: dict[str, Any],
    target: str,
    digest: str | None = None,
    files: Manifest | None = None,
    *,
    at: datetime | None = None,
    signature: ArtifactSignature | None = None,
) -> Verdict:
    """Whether a verified statement allows these files (or this manifest digest) to go to ``target``
    at ``at`` (now): within its validity period. ``signature``: model.sig as verified in the files
    (with the deploy step's key); required to verify when the decision saw a verified one."""
    predicate = stmt.get("predicate") or {}
    decision = predicate.get("decision") or {}
    model = next(
        (s["name"] for s in stmt.get("subject") or [] if str(s.get("name", "")).startswith(MODEL_PREFIX)),
        None,
    )
    problems: list[str] = []
    if decision.get("outcome") != "allow" or decision.get("allow") is not True:
        problems.append(
            f"decision: {decision.get('decision_id')} is {decision.get('outcome')!r}, not an allow"
        )
    problems += _validity(predicate, at or datetime.now(UTC))
    stage = (decision.get("target") or {}).get("stage")
    if stage != target:
        problems.append(f"target: the decision is for {stage!r}, not {target!r}")
    problems += _signature(predicate, files, signature)
    approved = (predicate.get("manifest") or {}).get("digest")
    actual = files.digest if files is not None else digest
    if actual != approved:
        problems.append(f"digest: the files are {actual}, the decision allowed {approved}")
        if files is not None:
            problems += _file_differences(stmt, files)
    return Verdict(not problems, problems, model.removeprefix(MODEL_PREFIX) if model else None)


def _signature(
    predicate: dict[str, Any], files: Manifest | None, signature: ArtifactSignature | None
) -> list[str]:
    """A decision that saw a verified signature ships only files whose model.sig verifies here too."""
    seen = predicate.get("signature") or {}
    if files is None or seen.get("status") != "verified":
        return []
    if signature is None:
        return [
            f"signature: the decision's files carried a verified model signature (signer "
            f"{seen.get('signer')}): pass --signing-key with that signer's public key"
        ]
    if signature.status != "verified":
        why = f" ({signature.error})" if signature.error else ""
        return [f"signature: {SIGNATURE_FILE} is {signature.status}{why}"]
    return []


def _validity(predicate: dict[str, Any], at: datetime) -> list[str]:
    """An attestation without a validity period (made before it had one) is refused like an expired one."""
    issued, until = parse_iso(predicate.get("issued_at")), parse_iso(predicate.get("valid_until"))
    if issued is None or until is None:
        return ["expired: the attestation has no validity period (issued_at, valid_until): attest again"]
    if at > until:
        return [f"expired: the attestation was valid until {iso(until)}, it is {iso(at)}: attest again"]
    if at < issued:
        return [f"not yet valid: the attestation was issued at {iso(issued)}, after {iso(at)}"]
    return []


def _file_differences(stmt: dict[str, Any], files: Manifest) -> list[str]:
    approved = {
        s["name"]: s["digest"].get("sha256")
        for s in stmt.get("subject") or []
        if not str(s.get("name", "")).startswith(MODEL_PREFIX)
    }
    present = {f.path: f.sha256 for f in files.files}
    out = [f"  changed: {p}" for p in sorted(approved.keys() & present.keys()) if approved[p] != present[p]]
    out += [f"  missing: {p}" for p in sorted(approved.keys() - present.keys())]
    out += [f"  added:   {p}" for p in sorted(present.keys() - approved.keys())]
    return out


def write(envelope: dict[str, Any], out: Path) -> None:
    out.write_text(json.dumps(envelope, indent=2) + "\n")


def _hex(digest: str) -> str:
    return digest.removeprefix("sha256:")
