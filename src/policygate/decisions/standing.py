"""Whether a recorded release decision still stands: an attestation claims no more than that.

A decision stops standing when the log holds, after it, a later *collected* decision for the same model
version and target (what-ifs never count), or a withdrawal (or rejection) by a reviewer whose approval
it counted (the reviewer's latest entry wins, as in approval.rego). Retirement is not recorded yet:
:func:`_retired` is where it will be asked.

The log reads an attestation needs live here (integrity, below the log, only builds and signs the
statement): :func:`standing_record` and :func:`attestation_of`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from policygate.decisions.log import DecisionLog
from policygate.decisions.record import model_spellings
from policygate.integrity.attest import DEFAULT_TTL_S, AttestError, not_a_what_if, statement

APPROVAL_PAGE = 200


class NotStanding(AttestError):
    """The decision is no longer the version's standing decision for its target (superseded, an
    approval it counted withdrawn): its attestation would outlive its allow."""


def attestation_of(
    log: DecisionLog, decision_id: str, *, ttl_s: float = DEFAULT_TTL_S, now: datetime | None = None
) -> dict[str, Any]:
    """The statement of a decision recorded in ``log`` (a DecisionLog) that still stands, valid for
    ``ttl_s`` from ``now``; LookupError when the log has no such decision, NotStanding when it no longer
    stands."""
    record = standing_record(log, decision_id)
    issued = now or datetime.now(UTC)
    return statement(record, str(log.hash_at(int(record["seq"]))), issued, issued + timedelta(seconds=ttl_s))


def standing_record(log: DecisionLog, decision_id: str) -> dict[str, Any]:
    """The recorded decision, if it still stands (LookupError: none; AttestError: a what-if;
    NotStanding: superseded or withdrawn, naming why)."""
    record = log.get(decision_id) if len(decision_id) <= 64 else None
    if record is None or record.get("kind") != "decision":
        raise LookupError(f"no decision {decision_id!r} in the decision log")
    not_a_what_if(record.get("decision") or {})
    why = why_not_standing(log, record)
    if why is not None:
        raise NotStanding(f"decision {decision_id} no longer stands: {why}")
    return record


def why_not_standing(log: DecisionLog, record: dict[str, Any]) -> str | None:
    """None while the recorded decision ``record`` (its log body) is the version's standing decision
    for its target; otherwise why not, in words an operator can act on."""
    decision = record.get("decision") or {}
    ref = str((decision.get("subject") or {}).get("ref") or "")
    stage = (decision.get("target") or {}).get("stage")
    seq = int(record["seq"])
    spellings = model_spellings(ref)
    latest = log.latest_release(model=spellings, target=stage)
    if latest is not None and int(latest["seq"]) > seq:
        later = latest.get("decision") or {}
        return (
            f"superseded: decision {later.get('decision_id')} ({later.get('outcome')}) for {ref} -> {stage} "
            f"was recorded after decision {decision.get('decision_id')}"
        )
    return _withdrawn(log, spellings, record) or _retired(log, spellings, record)


def _withdrawn(log: DecisionLog, spellings: list[str], record: dict[str, Any]) -> str | None:
    """A later entry, not an approval, by a reviewer whose approval the decision counted."""
    counted = {
        (str(a.get("by", "")).lower(), a.get("stage"))
        for a in (record.get("evidence") or {}).get("approvals") or []
        if isinstance(a, dict) and a.get("decision", "approved") == "approved"
    }
    if not counted:
        return None
    seq, before = int(record["seq"]), None
    while True:
        page = log.query(kind="approval", model=spellings, limit=APPROVAL_PAGE, before_seq=before)
        for entry in page:
            if int(entry["seq"]) <= seq:
                return None
            approval = entry.get("approval") or {}
            key = (str(approval.get("by", "")).lower(), approval.get("stage"))
            if approval.get("decision") != "approved" and key in counted:
                taken = f" of {approval['withdraws']}" if approval.get("withdraws") else ""
                return (
                    f"the approval by {approval.get('by')} for {approval.get('stage')} it counted was "
                    f"{approval.get('decision')} after it ({approval.get('id')}{taken})"
                )
        if len(page) < APPROVAL_PAGE:
            return None
        before = int(page[-1]["seq"])


def _retired(log: DecisionLog, spellings: list[str], record: dict[str, Any]) -> str | None:
    """The seam for retirement: when retirements are recorded (lifecycle), a retirement of this version
    after the decision ends it here. None until then."""
    return None
