"""The parts of making a decision that need no engine and no log: supplied evidence with the claims
only policygate may make rebuilt, the fields a decision carries about its request, and the log
record a decision is committed as.
"""

from __future__ import annotations

import logging
from typing import Any

from policygate.decisions.approvals import SOURCE, with_verified
from policygate.decisions.decision import Decision
from policygate.decisions.opa_event import recorded_block
from policygate.evidence import Approval, EvidenceV1
from policygate.timeutil import now_iso

log = logging.getLogger("policygate.decisions.service")  # the decisions' debug log keeps its name


def as_supplied(evidence: EvidenceV1, caller: str | None, verified: list[Approval]) -> EvidenceV1:
    """Supplied evidence with the claims only policygate may make rebuilt from what it knows:
    ``request.caller`` is the authenticated caller (or none), no approval is ``verified`` or from
    ``source: policygate`` because the document says so; the approvals policygate recorded for
    the model (``verified``) are added from the log. The document given is not changed."""
    claimed = [
        a if not a.verified else a.model_copy(update={"verified": False})
        for a in evidence.approvals
        if a.source != SOURCE
    ]
    return evidence.model_copy(
        update={
            "request": evidence.request.model_copy(update={"caller": caller}),
            "approvals": with_verified(claimed, verified) if verified else claimed,
        }
    )


def record_of(
    decision: Decision, doc: dict[str, Any] | None, decision_id: str | None
) -> tuple[Decision, tuple[str, str, dict[str, Any]], dict[str, Any]]:
    """The log record of a decision: (decision with its final id, positional and keyword arguments)."""
    if decision_id:
        decision = decision.model_copy(update={"decision_id": decision_id})
    payload = {
        "decision": decision.model_dump(mode="json"),
        "evidence": doc,
        "opa": recorded_block(decision._opa),  # what OPA's decision log would say (export --format opa)
    }
    fields = {
        "model_ref": (decision.subject or {}).get("ref"),
        "target_stage": (decision.target or {}).get("stage"),
        "outcome": decision.outcome,
        "policy_revision": decision.policy_revision,
    }
    return decision, ("decision", decision.decision_id, payload), fields


def log_decision(decision: Decision) -> None:
    log.debug(
        "decision %s %s %s -> %s",
        decision.decision_id,
        (decision.subject or {}).get("ref"),
        (decision.target or {}).get("stage"),
        decision.outcome,
    )


def about(doc: dict[str, Any]) -> dict[str, Any]:
    subject = doc.get("subject") or {}
    request = doc.get("request") or {}
    return {
        "subject": {k: subject.get(k) for k in ("ref", "platform", "name", "version")} if subject else None,
        "target": request.get("target"),
        "requested_by": request.get("requested_by"),
        "caller": request.get("caller"),
        "ticket": request.get("ticket"),
        "run_url": request.get("run_url"),
        "evaluated_at": now_iso(),
    }
