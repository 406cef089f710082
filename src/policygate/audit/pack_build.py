"""Building the evidence pack of one model version from the log (the format: :mod:`policygate.audit.pack`)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from policygate.audit.pack import (
    CHECKPOINT,
    DISCLOSURE,
    FORMAT,
    MANIFEST,
    SIGNATURE,
    SIGNED,
    SUMMARY,
    NothingRecorded,
    PackError,
    chain_file,
    is_about,
    names_of,
    write_tar,
)
from policygate.decisions import checkpoint as checkpoints
from policygate.decisions.log import DecisionLog
from policygate.decisions.record import model_spellings
from policygate.decisions.schema import Record
from policygate.decisions.standing import standing_record
from policygate.evidence import canonical_json
from policygate.integrity import attest
from policygate.policy.revisions import RevisionError, kept, record_id


@dataclass
class Row:
    seq: int
    kind: str
    id: str
    body: str
    prev_hash: str
    record_hash: str


def _rows(log_: DecisionLog, first: int, last: int) -> Iterator[Row]:
    after = first - 1
    while after < last:
        stmt = (
            select(
                Record.seq, Record.kind, Record.decision_id, Record.body, Record.prev_hash, Record.record_hash
            )
            .where(Record.seq > after, Record.seq <= last)
            .order_by(Record.seq)
            .limit(1000)
        )
        with log_.engine.connect() as conn:
            found = conn.execute(stmt).all()
        if not found:
            return
        for r in found:
            yield Row(r.seq, r.kind, r.decision_id, r.body, r.prev_hash, r.record_hash)
        after = found[-1].seq


def _checkpoint(
    log_: DecisionLog, key: Ed25519PrivateKey | None, directory: Path | None
) -> tuple[checkpoints.Checkpoint, str]:
    if key is not None:
        cp = checkpoints.current(log_)
        return cp, checkpoints.sign(cp, key)
    latest = directory / "latest.txt" if directory is not None else None
    if latest is None or not latest.is_file():
        raise PackError(
            "no checkpoint to prove the records in: set POLICYGATE_CHECKPOINT_KEY (a checkpoint is signed "
            "now) or POLICYGATE_CHECKPOINT_DIR (its newest is used)"
        )
    text = latest.read_text(encoding="utf-8")
    cp, _ = checkpoints._parse(text)
    return cp, text


def build(
    log_: DecisionLog,
    ref: str,
    *,
    key: Ed25519PrivateKey | None = None,
    checkpoint_dir: Path | None = None,
    now: datetime | None = None,
) -> bytes:
    """The pack (tar.gz bytes) of the version ``ref``; PackError when there is nothing to prove it by."""
    try:
        cp, cp_text = _checkpoint(log_, key, checkpoint_dir)
    except (OSError, UnicodeDecodeError, checkpoints.CheckpointError) as exc:
        raise PackError(f"the newest checkpoint cannot be read: {exc}") from None
    spellings = model_spellings(ref)
    # two streamed passes, only the version's records held: its decisions (by the model column), then
    # every record that names it, one of them, or a waiver they applied
    names, waivers = names_of(
        (r.body for r in log_.records(kind="decision", model=spellings) if r.seq <= cp.size), spellings
    )
    bodies = {r.seq: r.body for r in log_.records() if r.seq <= cp.size and is_about(r.body, names, waivers)}
    seqs = set(bodies)
    if not seqs:
        raise NothingRecorded(f"no record about {ref} in the log up to its checkpoint (size {cp.size})")
    decisions = [bodies[s] for s in sorted(seqs) if bodies[s].get("kind") == "decision"]
    revisions = sorted(
        {
            str(d["decision"]["policy_revision"])
            for d in decisions
            if (d.get("decision") or {}).get("policy_revision")
        }
    )
    policy: dict[str, tuple[int, dict[str, str]]] = {}
    for revision in revisions:
        try:
            content = kept(log_, revision)
        except RevisionError:
            continue  # not kept (an OPA policygate does not run): the summary says so
        record = log_.get(record_id(revision)) or {}
        if int(record.get("seq", cp.size + 1)) <= cp.size:
            policy[revision] = (int(record["seq"]), content)
    first = min([*seqs, *(seq for seq, _ in policy.values())])
    files: dict[str, bytes] = {CHECKPOINT: cp_text.encode()}
    for row in _rows(log_, first, cp.size):
        files[chain_file(row.seq)] = canonical_json(
            {
                "seq": row.seq,
                "kind": row.kind,
                "id": row.id,
                "prev_hash": row.prev_hash,
                "record_hash": row.record_hash,
                "body": row.body,
            }
        )
    for d in decisions:
        if isinstance(d.get("evidence"), dict):
            files[f"evidence/{d['id']}.json"] = canonical_json(d["evidence"])
    for revision, (_, kept_files) in policy.items():
        for path, text in kept_files.items():
            files[f"policy/{revision.removeprefix('sha256:')}/{path}"] = text.encode()
    if key is not None:
        issued = now or datetime.now(UTC)
        for d in decisions:
            try:
                stmt = attest.statement(
                    standing_record(log_, str(d["id"])),
                    bodies_hash(files, int(d["seq"])),
                    issued,
                    issued + _ttl(),
                )
            except (LookupError, attest.AttestError):
                continue  # a what-if, superseded, withdrawn or without files: nothing to attest
            files[f"attestations/{d['id']}.intoto.json"] = canonical_json(attest.sign(stmt, key))
    listed = sorted(seqs)
    files[SUMMARY] = summary(ref, cp, listed, bodies, policy, revisions, first, key is not None).encode()
    manifest = {
        "format": FORMAT,
        "model": ref,
        "spellings": spellings,
        "checkpoint": {"origin": cp.origin, "size": cp.size, "head": cp.head},
        "segment": {"first": first, "last": cp.size},
        "records": [{"seq": s, "kind": bodies[s].get("kind"), "id": bodies[s].get("id")} for s in listed],
        "policy_records": [{"seq": seq, "revision": rev} for rev, (seq, _) in sorted(policy.items())],
        "disclosure": DISCLOSURE,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    files[MANIFEST] = json.dumps(manifest, indent=2, sort_keys=True).encode()
    if key is not None:
        sig = key.sign(SIGNED + files[MANIFEST])
        files[SIGNATURE] = base64.b64encode(checkpoints.key_id("policygate", key.public_key()) + sig) + b"\n"
    return write_tar(files)


def _ttl() -> timedelta:
    return timedelta(seconds=attest.DEFAULT_TTL_S)


def build_configured(
    log_: DecisionLog, ref: str, key_path: Path | None, checkpoint_dir: Path | None
) -> bytes:
    """The pack as the service's settings make it: a checkpoint signed now with the checkpoint key
    (POLICYGATE_CHECKPOINT_KEY), else the newest in POLICYGATE_CHECKPOINT_DIR."""
    try:
        key = checkpoints.load_private(key_path) if key_path is not None else None
    except checkpoints.CheckpointError as exc:
        raise PackError(str(exc)) from None
    return build(log_, ref, key=key, checkpoint_dir=checkpoint_dir)


def bodies_hash(files: dict[str, bytes], seq: int) -> str:
    return str(json.loads(files[chain_file(seq)])["record_hash"])


def summary(
    ref: str,
    cp: checkpoints.Checkpoint,
    seqs: list[int],
    bodies: dict[int, dict[str, Any]],
    policy: dict[str, tuple[int, dict[str, str]]],
    revisions: list[str],
    first: int,
    signed: bool,
) -> str:
    lines = [
        f"# Evidence pack: {ref}",
        "",
        f"Checkpoint: `{cp.origin}`, size {cp.size}, head `{cp.head}`, time {cp.time}.",
        f"Chain segment: records {first} to {cp.size}. {DISCLOSURE}",
        "",
        "Verify offline: `policygate log pack verify THIS_FILE --key checkpoint.pub`.",
        "",
        "| seq | kind | id | recorded | what |",
        "|---|---|---|---|---|",
    ]
    for seq in seqs:
        body = bodies[seq]
        lines.append(
            f"| {seq} | {body.get('kind')} | {body.get('id')} | {body.get('recorded_at')} | {_what(body)} |"
        )
    lines += ["", "## Policy revisions that decided", ""]
    for revision in revisions:
        where = f"record {policy[revision][0]}, files in `policy/{revision.removeprefix('sha256:')}/`"
        lines.append(f"- `{revision}`: " + (where if revision in policy else "content not kept by this log"))
    lines += [
        "",
        "The list of records about this version is "
        + (
            "signed with the checkpoint key (manifest.sig)."
            if signed
            else "not signed (no key at pack time)."
        ),
        "",
    ]
    return "\n".join(lines)


def _what(body: dict[str, Any]) -> str:
    decision = body.get("decision")
    if isinstance(decision, dict):
        stage = (decision.get("target") or {}).get("stage")
        request = (body.get("evidence") or {}).get("request") or {}
        ticket = decision.get("ticket") or request.get("ticket")
        return (
            f"{decision.get('outcome')} for {stage}, policy {decision.get('policy_revision')}"
            + (f", ticket {ticket}" if ticket else "")
            + (" (what-if on supplied evidence)" if decision.get("evidence_origin") == "supplied" else "")
        ).replace("|", "/")
    life = body.get("lifecycle")
    if isinstance(life, dict):  # an owner review, a retirement or its undoing
        said = f": {life['reason_or_note']}" if life.get("reason_or_note") else ""
        return f"{life.get('kind')} by {life.get('by')}{said}".replace("|", "/").replace("\n", " ")
    return str(body.get("kind"))
