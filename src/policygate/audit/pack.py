"""The evidence pack of one model version: everything an outside auditor needs to check, offline, what
the log says about it.

A pack is a tar.gz holding ``manifest.json`` (what is inside, with a SHA-256 of every other file),
``checkpoint.txt`` (a signed checkpoint of the log), ``chain/<seq>.json`` (the stored rows of the chain
segment from the first record about the version, or the first policy record that decided it, to the
checkpoint's size: each row's exact hashed body, previous hash and hash), ``evidence/<id>.json`` (the
evidence document of each decision), ``policy/<revision hex>/...`` (the files of each revision that
decided, as the chain keeps them), ``attestations/<id>.intoto.json`` (when a checkpoint key is set and
a decision still stands) and ``SUMMARY.md`` for people who would rather read than run.

A hash chain links a record to the next through the whole of the next one's body, so the rows of other
models inside the segment are disclosed in full: nothing shorter proves the link. ``manifest.sig``
(the manifest signed with the checkpoint key at pack time) makes the list of records about the version
itself tamper-evident; a pack built from a checkpoint in the directory, without the key, has none.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select

from policygate.decisions import checkpoint as checkpoints
from policygate.decisions.chain import GENESIS, chain_hash
from policygate.decisions.log import DecisionLog, LogError
from policygate.decisions.record import model_spellings
from policygate.decisions.schema import Record
from policygate.decisions.standing import standing_record
from policygate.evidence import canonical_json, digest
from policygate.integrity import attest
from policygate.policy.revisions import KIND as POLICY_KIND
from policygate.policy.revisions import RevisionError, kept, record_id, revision_of_bundle
from policygate.policy.waivers import KIND as WAIVER_KIND

FORMAT = "policygate-pack/v1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
CHECKPOINT = "checkpoint.txt"
SUMMARY = "SUMMARY.md"
_SIGNED = FORMAT.encode() + b"\n"
DISCLOSURE = (
    "Records of other models or of no model inside the chain segment are included in full (their "
    "hashed bodies): a hash chain links each record to the next through the whole next body, so "
    "nothing shorter proves that a record about this version sits in the signed log. Nothing before "
    "the segment's first record and nothing after the checkpoint's size is included."
)


class PackError(ValueError):
    """No pack can be built (no checkpoint, nothing recorded about the version)."""


class NothingRecorded(PackError):
    """The log holds no record about the version up to its checkpoint."""


@dataclass
class Row:
    seq: int
    kind: str
    id: str
    body: str
    prev_hash: str
    record_hash: str


def chain_file(seq: int) -> str:
    return f"chain/{seq:012d}.json"


def names_any(value: Any, names: set[str]) -> bool:
    """Whether a record body names one of ``names`` anywhere (a model reference or a decision id)."""
    if isinstance(value, str):
        return value in names
    if isinstance(value, dict):
        return any(names_any(v, names) for v in value.values())
    if isinstance(value, list):
        return any(names_any(v, names) for v in value)
    return False


def _names(decisions: Iterable[dict[str, Any]], spellings: list[str]) -> tuple[set[str], set[str]]:
    """What a record about a version names: the version or one of its decisions (an enforcement); and
    the waivers that applied to those decisions (their records, added or revoked, count too)."""
    names, waivers = set(spellings), set()
    for body in decisions:
        if ((body.get("decision") or {}).get("subject") or {}).get("ref") not in spellings:
            continue
        names.add(str(body.get("id")))
        for w in (body.get("decision") or {}).get("warnings") or []:
            if isinstance(w, dict) and w.get("waiver"):
                waivers.add(str(w["waiver"]))
    return names, waivers


def _is_about(body: dict[str, Any], names: set[str], waivers: set[str]) -> bool:
    if body.get("kind") == POLICY_KIND:
        return False
    return names_any(body, names) or (body.get("kind") == WAIVER_KIND and names_any(body, waivers))


def about(rows: list[tuple[int, dict[str, Any]]], spellings: list[str]) -> set[int]:
    """Sequence numbers of the records about a version among ``rows`` (see _names)."""
    names, waivers = _names((b for _, b in rows if b.get("kind") == "decision"), spellings)
    return {seq for seq, body in rows if _is_about(body, names, waivers)}


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
    names, waivers = _names(
        (r.body for r in log_.records(kind="decision", model=spellings) if r.seq <= cp.size), spellings
    )
    bodies = {r.seq: r.body for r in log_.records() if r.seq <= cp.size and _is_about(r.body, names, waivers)}
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
        sig = key.sign(_SIGNED + files[MANIFEST])
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


def write_tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    return out.getvalue()


def read_tar(data: bytes) -> dict[str, bytes]:
    """The regular files of a pack by name; PackError when it is not a readable tar.gz."""
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar:
                if not member.isfile():
                    raise PackError(f"{member.name}: not a regular file (a pack holds files only)")
                handle = tar.extractfile(member)
                if member.name in files or handle is None:
                    raise PackError(f"{member.name}: appears twice in the pack")
                files[member.name] = handle.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise PackError(f"the pack is not a readable tar.gz: {exc}") from None
    return files


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
    return str(body.get("kind"))


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
        key.verify(blob[4:], _SIGNED + files[MANIFEST])
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


def read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PackError(f"cannot read {path}: {exc.strerror}") from None


__all__ = ["LogError", "NothingRecorded", "PackError", "Verdict", "build", "verify"]
