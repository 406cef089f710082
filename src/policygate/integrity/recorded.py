"""The manifest digests earlier **allow** decisions of a version recorded, from the log: what INT-002
compares the files collected now with. Only allow decisions count: a denied decision on changed
files must not make them the new baseline (otherwise enough denied attempts would)."""

from __future__ import annotations

from typing import Any

from policygate.decisions.log import DecisionLog
from policygate.decisions.model import is_release_decision
from policygate.evidence import RecordedDigest

PER_MODEL = 50  # newest allow decisions looked through


def recorded_digests(log_: DecisionLog, refs: list[str]) -> dict[str, list[RecordedDigest]]:
    """Per model reference (subject.ref), the distinct digests of its newest allow decisions, newest first."""
    found: dict[str, list[RecordedDigest]] = {ref: [] for ref in refs}
    for start in range(0, len(refs), 200):
        chunk = refs[start : start + 200]
        for record in log_.query(model=chunk, outcome="allow", limit=PER_MODEL * len(chunk)):
            _add(found, record)
    return found


def _add(found: dict[str, list[RecordedDigest]], record: dict[str, Any]) -> None:
    decision = record.get("decision") or {}
    ref = (decision.get("subject") or {}).get("ref")
    digest = ((record.get("evidence") or {}).get("artifacts") or {}).get("digest")
    if not is_release_decision(record) or ref not in found or not isinstance(digest, str):
        return
    seen = found[ref]
    if len(seen) < PER_MODEL and all(r.digest != digest for r in seen):
        seen.append(
            RecordedDigest(
                digest=digest,
                decision_id=str(decision.get("decision_id")),
                recorded_at=record.get("recorded_at"),
            )
        )
