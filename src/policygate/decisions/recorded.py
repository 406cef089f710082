"""The manifest digests the log recorded for a version: what INT-002 compares the files collected now
with. Two things record one: an **allow** decision collected from the platform, and an approval
recorded through policygate (the files the approver approved). A denied decision never does: a
deny on changed files must not make them the new baseline (otherwise enough denied attempts would);
nor does a rejection. A withdrawn approval still counts: it recorded what the files were."""

from __future__ import annotations

from typing import Any

from policygate.decisions.decision import is_release_decision
from policygate.decisions.log import DecisionLog
from policygate.evidence import RecordedDigest

PER_MODEL = 50  # newest allow decisions (and approvals) looked through
CHUNK = 200


def recorded_digests(
    log_: DecisionLog, refs: list[str], approvals: dict[str, list[dict[str, Any]]]
) -> dict[str, list[RecordedDigest]]:
    """Per model reference (subject.ref), the distinct recorded digests, decisions' first, each
    newest first. ``approvals``: the versions' approval records as the caller already read them
    (:func:`policygate.decisions.approvals.approval_records`), of which the newest PER_MODEL count."""
    found: dict[str, list[RecordedDigest]] = {ref: [] for ref in refs}
    for start in range(0, len(refs), CHUNK):
        chunk = refs[start : start + CHUNK]
        for record in log_.query(model=chunk, outcome="allow", limit=PER_MODEL * len(chunk), release=True):
            _add_decision(found, record)
    for ref in refs:
        for record in approvals.get(ref, [])[:PER_MODEL]:
            _add_approval(found, record)
    return found


def _add_decision(found: dict[str, list[RecordedDigest]], record: dict[str, Any]) -> None:
    decision = record.get("decision") or {}
    digest = ((record.get("evidence") or {}).get("artifacts") or {}).get("digest")
    if is_release_decision(record):
        _add(found, (decision.get("subject") or {}).get("ref"), digest, decision.get("decision_id"), record)


def _add_approval(found: dict[str, list[RecordedDigest]], record: dict[str, Any]) -> None:
    approval = record.get("approval") or {}
    if approval.get("decision") == "approved":
        _add(found, approval.get("model"), approval.get("artifacts_digest"), approval.get("id"), record)


def _add(
    found: dict[str, list[RecordedDigest]], ref: Any, digest: Any, by: Any, record: dict[str, Any]
) -> None:
    seen = found.get(ref) if isinstance(ref, str) else None
    if seen is None or not isinstance(digest, str) or len(seen) >= 2 * PER_MODEL:
        return
    if all(r.digest != digest for r in seen):
        seen.append(
            RecordedDigest(
                digest=digest,
                decision_id=str(by),
                kind="approval" if "approval" in record else "decision",
                recorded_at=record.get("recorded_at"),
            )
        )
