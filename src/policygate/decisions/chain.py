"""The hash chain: how a record links to the one before, and how the stored rows are checked."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from policygate.timeutil import as_utc

GENESIS = "0" * 64
_UNCHECKED: Any = object()


def chain_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + body.encode()).hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    problem: str | None = None
    seq: int | None = None


def walk(rows: Iterable[Any], prev: str = GENESIS, expected_seq: int = 1) -> VerifyResult:
    """Walk stored rows in sequence order; the first record changed, removed or reordered is named.
    ``prev`` and ``expected_seq``: where the walk starts (the genesis, or just after a record whose
    hash was verified before)."""
    n = 0
    for row in rows:
        n += 1
        if row.seq != expected_seq:
            return VerifyResult(
                False, n, f"record {expected_seq} is missing (next is {row.seq})", expected_seq
            )
        if row.prev_hash != prev:
            return VerifyResult(False, n, f"record {row.seq} does not link to record {row.seq - 1}", row.seq)
        if chain_hash(prev, row.body) != row.record_hash:
            return VerifyResult(False, n, f"record {row.seq} was changed (hash mismatch)", row.seq)
        problem = _columns_disagree(row)
        if problem:
            return VerifyResult(False, n, f"record {row.seq} was changed ({problem})", row.seq)
        prev, expected_seq = row.record_hash, row.seq + 1
    return VerifyResult(True, n)


def _columns_disagree(row: Any) -> str | None:
    """Every column a query or export filters on is a copy of the hashed body; an edit to one shows
    here (``recorded_at`` included: ``log export --since`` reads it)."""
    body = json.loads(row.body)
    if body.get("seq") != row.seq:
        return "sequence number differs from the hashed body"
    if body.get("kind") != row.kind or body.get("id") != row.decision_id:
        return "kind or id differs from the hashed body"
    try:
        recorded = as_utc(datetime.fromisoformat(str(body.get("recorded_at"))))
    except ValueError:
        return "the hashed body has no valid recorded_at"
    if row.recorded_at is None or as_utc(row.recorded_at) != recorded:
        return "recorded_at column differs from the hashed body"
    expected = _columns_of(body)
    columns = (
        _UNCHECKED if expected[0] is _UNCHECKED else row.model_ref,
        row.target_stage,
        row.outcome,
        row.policy_revision,
    )
    if columns != expected:
        return "model, target, outcome or policy revision column differs from the hashed body"
    stored = getattr(row, "evidence_origin", _UNCHECKED)  # rows read without it (an export) skip this
    if stored is not _UNCHECKED and stored != evidence_origin(str(row.kind), body):
        return "evidence origin column differs from the hashed body"
    return None


def evidence_origin(kind: str, payload: dict[str, Any]) -> str | None:
    """The ``evidence_origin`` column as append derives it: a decision's own (None for other kinds)."""
    if kind != "decision":
        return None
    origin = (payload.get("decision") or {}).get("evidence_origin")
    return origin if isinstance(origin, str) else None


def _columns_of(body: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    """(model_ref, target_stage, outcome, policy_revision) as append derives them from a record."""
    if body.get("kind") == "decision":
        decision = body.get("decision") or {}
        return (
            (decision.get("subject") or {}).get("ref"),
            (decision.get("target") or {}).get("stage"),
            decision.get("outcome"),
            decision.get("policy_revision"),
        )
    if body.get("kind") == "approval":
        return ((body.get("approval") or {}).get("model"), None, None, None)
    if body.get("kind") == "lifecycle":  # a review, retirement or un-retirement (decisions/lifecycle.py)
        return ((body.get("lifecycle") or {}).get("model"), None, None, None)
    if body.get("kind") == "delivery":
        return ((body.get("delivery") or {}).get("ref"), None, None, None)
    if body.get("kind") == "audit":  # one run, many models: only the policy revision is a column
        return (None, None, None, (body.get("audit") or {}).get("policy_revision"))
    if body.get("kind") == "enforcement":  # the model is in the id's decision; the column is not checked
        return (_UNCHECKED, None, None, None)
    return (None, None, None, None)
