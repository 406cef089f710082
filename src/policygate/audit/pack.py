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

This module is the format both sides share: :mod:`policygate.audit.pack_build` makes a pack from the
log, :mod:`policygate.audit.pack_verify` checks one offline with the public key alone.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from policygate.errors import InputError
from policygate.policy.revisions import KIND as POLICY_KIND
from policygate.policy.waivers import KIND as WAIVER_KIND

FORMAT = "policygate-pack/v1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
CHECKPOINT = "checkpoint.txt"
SUMMARY = "SUMMARY.md"
SIGNED = FORMAT.encode() + b"\n"
DISCLOSURE = (
    "Records of other models or of no model inside the chain segment are included in full (their "
    "hashed bodies): a hash chain links each record to the next through the whole next body, so "
    "nothing shorter proves that a record about this version sits in the signed log. Nothing before "
    "the segment's first record and nothing after the checkpoint's size is included."
)


class PackError(InputError):
    """No pack can be built (no checkpoint, nothing recorded about the version)."""


class NothingRecorded(PackError):
    """The log holds no record about the version up to its checkpoint."""


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


def names_of(decisions: Iterable[dict[str, Any]], spellings: list[str]) -> tuple[set[str], set[str]]:
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


def is_about(body: dict[str, Any], names: set[str], waivers: set[str]) -> bool:
    if body.get("kind") == POLICY_KIND:
        return False
    return names_any(body, names) or (body.get("kind") == WAIVER_KIND and names_any(body, waivers))


def about(rows: list[tuple[int, dict[str, Any]]], spellings: list[str]) -> set[int]:
    """Sequence numbers of the records about a version among ``rows`` (see names_of)."""
    names, waivers = names_of((b for _, b in rows if b.get("kind") == "decision"), spellings)
    return {seq for seq, body in rows if is_about(body, names, waivers)}


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


def read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PackError(f"cannot read {path}: {exc.strerror}") from None
