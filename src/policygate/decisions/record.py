"""The governed record of one model version, assembled from the decision log.

It answers the governance team's four questions from what the log holds (nothing is
fetched from MLflow or Azure here): who owns this model (``ownership`` of the newest
evidence), which policy decided (``policy_revision`` of each decision), what was
decided (``latest_decisions`` per target, ``history``), and on which lineage
(``lineage``, and the lineage each latest decision was made on).

``approvals`` are those seen in the evidence of the recent decisions;
``recorded_approvals`` those recorded through policygate itself (log kind "approval").
"""

from __future__ import annotations

from typing import Any

from policygate.decisions.decision import is_release_decision
from policygate.decisions.log import DecisionLog
from policygate.refs import RefError, parse

MAX_EVIDENCE_SEARCH = 2000  # records looked through for the newest full evidence
MAX_RECORDED_APPROVALS = 500  # approvals policygate itself recorded for the model (kind "approval")


def model_spellings(ref: str) -> list[str]:
    """The reference as typed and, when it parses, its canonical form (the log stores what callers sent)."""
    spellings = [ref]
    try:
        canonical = str(parse(ref))
    except RefError:
        return spellings
    if canonical != ref:
        spellings.append(canonical)
    return spellings


def lineage_summary(evidence: dict[str, Any]) -> dict[str, Any] | None:
    """Run, commit and dataset digests: enough to name the lineage a decision was made on."""
    lineage = evidence.get("lineage")
    if not isinstance(lineage, dict):
        return None
    run = lineage.get("run") or {}
    code = lineage.get("code") or {}
    return {
        "run": {k: run.get(k) for k in ("platform", "id", "status")} if run else None,
        "commit": code.get("commit"),
        "repository": code.get("repository"),
        "datasets": [
            {k: d.get(k) for k in ("name", "digest", "context")} for d in lineage.get("datasets") or []
        ],
    }


def decision_summary(record: dict[str, Any]) -> dict[str, Any]:
    decision: dict[str, Any] = record.get("decision") or {}
    evidence: dict[str, Any] = record.get("evidence") or {}
    request: dict[str, Any] = evidence.get("request") or {}
    return {
        "seq": record.get("seq"),
        "decision_id": decision.get("decision_id"),
        "recorded_at": record.get("recorded_at"),
        "target": decision.get("target"),
        "outcome": decision.get("outcome"),
        "allow": decision.get("allow"),
        "reasons": [r.get("id") for r in decision.get("reasons") or []],
        "warnings": [r.get("id") for r in decision.get("warnings") or []],
        "dryrun": [r.get("id") for r in decision.get("dryrun") or []],
        "policy_revision": decision.get("policy_revision"),
        "evidence_digest": decision.get("evidence_digest"),
        "requested_by": decision.get("requested_by"),
        "caller": decision.get("caller"),
        # the change on record: the evidence's request holds it (decisions recorded before it was
        # copied into the decision have it there only)
        "ticket": decision.get("ticket") or request.get("ticket"),
        "run_url": decision.get("run_url") or request.get("run_url"),
        "evidence_origin": decision.get("evidence_origin"),
        "lineage": lineage_summary(evidence),
    }


def _is_full_evidence(record: dict[str, Any]) -> bool:
    """Collected evidence, complete: error decisions whose collection failed store only subject and
    request, and a what-if's evidence is whatever its caller wrote (never the model's record)."""
    evidence = record.get("evidence") or {}
    return isinstance(evidence, dict) and "schema" in evidence and is_release_decision(record)


def _approvals(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every distinct approval in the evidence of ``records`` (newest first), with where it was seen."""
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for record in records:
        decision_id = (record.get("decision") or {}).get("decision_id")
        for approval in (record.get("evidence") or {}).get("approvals") or []:
            key = tuple(approval.get(k) for k in ("by", "decision", "stage", "at", "source"))
            entry = seen.get(key)
            if entry is None:
                entry = seen[key] = {**approval, "last_seen_in": decision_id, "seen_in_decisions": 0}
            entry["first_seen_in"] = decision_id  # records run newest -> oldest
            entry["seen_in_decisions"] += 1
    return list(seen.values())


def governed_record(log: DecisionLog, ref: str, *, history: int = 50) -> dict[str, Any] | None:
    """The record of one model version, or None when the log has no decision about it."""
    spellings = model_spellings(ref)
    recent = log.query(model=spellings, limit=history)
    if not recent:
        return None
    latest_full = next((r for r in recent if _is_full_evidence(r)), None)
    searched = len(recent)
    while latest_full is None and searched < MAX_EVIDENCE_SEARCH and len(recent) == history:
        recent_page = log.query(model=spellings, limit=history, before_seq=recent[-1]["seq"])
        latest_full = next((r for r in recent_page if _is_full_evidence(r)), None)
        searched += len(recent_page)
        if len(recent_page) < history:
            break
    evidence: dict[str, Any] = (latest_full or {}).get("evidence") or {}
    newest = recent[0]  # may be a what-if: only names the model
    ownership = evidence.get("ownership") or {}
    collection = evidence.get("collection") or {}
    counts = log.outcome_counts(model=spellings)
    return {
        "model": (newest.get("decision") or {}).get("subject", {}).get("ref") or ref,
        "subject": evidence.get("subject") or (newest.get("decision") or {}).get("subject"),
        "owner": ownership.get("owner"),
        "risk_tier": ownership.get("risk_tier"),
        "ownership": ownership or None,
        "lineage": evidence.get("lineage"),
        "policy_revision": ((latest_full or {}).get("decision") or {}).get("policy_revision"),
        "latest_evidence": None
        if latest_full is None
        else {
            "decision_id": (latest_full.get("decision") or {}).get("decision_id"),
            "recorded_at": latest_full.get("recorded_at"),
            "evidence_digest": (latest_full.get("decision") or {}).get("evidence_digest"),
            "collected_at": collection.get("collected_at"),
            "gaps": collection.get("gaps", []),
            "conflicts": collection.get("conflicts", []),
            "evidence": evidence,
        },
        # release decisions only: a what-if on supplied evidence never answers "what was decided"
        "latest_decisions": {
            stage: decision_summary(record)
            for stage, record in sorted(
                log.latest_per_target(model=spellings, accept=is_release_decision).items()
            )
        },
        "approvals": _approvals([r for r in recent if is_release_decision(r)]),
        "recorded_approvals": [
            r.get("approval")
            for r in log.query(kind="approval", model=spellings, limit=MAX_RECORDED_APPROVALS)
        ],
        "decisions": {
            "total": sum(counts.values()),
            **{k: counts.get(k, 0) for k in ("allow", "deny", "error")},
        },
        "history": [decision_summary(r) for r in recent],
        "history_complete": len(recent) < history or sum(counts.values()) == len(recent),
    }
