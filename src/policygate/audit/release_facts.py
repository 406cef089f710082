"""What a standing release decision rested on, for the register: the approvals that counted (as
approval.rego counts them: the target stage's approvals no later entry of the same reviewer took back),
the withdrawals or rejections recorded since by a reviewer it counted, and the waivers it applied.

Only the log is read; an approval recorded through policygate is named by its record id."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from policygate.decisions.log import DecisionLog
from policygate.policy.waivers import KIND as WAIVER_KIND
from policygate.timeutil import parse_iso

APPROVAL_PAGE = 200


class CountedApproval(BaseModel):
    by: str
    stage: str
    at: str | None = None
    id: str | None = Field(default=None, description="The approval record, when policygate recorded it.")
    verified: bool = Field(default=False, description="Recorded by policygate from an authenticated caller.")
    source: str | None = None


class Withdrawal(BaseModel):
    by: str
    stage: str
    at: str
    decision: str = Field(description="withdrawn or rejected.")
    id: str = Field(description="The withdrawal's own record id.")
    withdraws: str | None = Field(default=None, description="The approval it takes back, when named.")


class AppliedWaiver(BaseModel):
    rule: str
    waiver: str = Field(description="The waiver's id.")
    reason: str | None = None
    approved_by: str | None = None
    expires: str | None = None


def _key(entry: dict[str, Any]) -> tuple[str, str]:
    return str(entry.get("by", "")).lower(), str(entry.get("stage", "")).lower()


def _not_before(later: dict[str, Any], earlier: dict[str, Any]) -> bool:
    """approval.rego's _not_before: a time that cannot be placed takes back (fails closed)."""
    then, first = parse_iso(later.get("at")), parse_iso(earlier.get("at"))
    return then is None or first is None or then >= first


def counted_approvals(
    log: DecisionLog, spellings: list[str], record: dict[str, Any]
) -> list[CountedApproval]:
    """The approvals in the decision's evidence that counted for its target."""
    evidence: dict[str, Any] = record.get("evidence") or {}
    stage = str(((record.get("decision") or {}).get("target") or {}).get("stage") or "").lower()
    entries = [
        a
        for a in evidence.get("approvals") or []
        if isinstance(a, dict) and str(a.get("stage", "")).lower() == stage
    ]
    approves = [a for a in entries if a.get("decision", "approved") == "approved"]
    taken = [a for a in entries if a.get("decision", "approved") != "approved"]
    counted = [a for a in approves if not any(_key(b) == _key(a) and _not_before(b, a) for b in taken)]
    if not counted:
        return []
    recorded = {
        (*_key(r["approval"]), r["approval"].get("at")): r["approval"].get("id")
        for r in log.query(kind="approval", model=spellings, limit=500)
        if isinstance(r.get("approval"), dict)
    }
    return [
        CountedApproval(
            by=str(a.get("by")),
            stage=str(a.get("stage")),
            at=a.get("at"),
            id=recorded.get((*_key(a), a.get("at"))) if a.get("verified") else None,
            verified=bool(a.get("verified")),
            source=a.get("source"),
        )
        for a in counted
    ]


def withdrawn_since(
    log: DecisionLog, spellings: list[str], record: dict[str, Any], counted: list[CountedApproval]
) -> list[Withdrawal]:
    """Withdrawals or rejections recorded after the decision by a reviewer whose approval it counted
    (oldest first): each means the decision no longer stands."""
    keys = {(c.by.lower(), c.stage.lower()) for c in counted}
    if not keys or record.get("seq") is None:
        return []
    seq, before = int(record["seq"]), None
    found: list[Withdrawal] = []
    while True:
        page = log.query(kind="approval", model=spellings, limit=APPROVAL_PAGE, before_seq=before)
        for entry in page:
            if int(entry["seq"]) <= seq:
                return sorted(found, key=lambda w: w.at)
            a = entry.get("approval") or {}
            if a.get("decision") != "approved" and _key(a) in keys:
                found.append(
                    Withdrawal(
                        by=a["by"],
                        stage=a["stage"],
                        at=a["at"],
                        decision=a["decision"],
                        id=a["id"],
                        withdraws=a.get("withdraws"),
                    )
                )
        if len(page) < APPROVAL_PAGE:
            return sorted(found, key=lambda w: w.at)
        before = int(page[-1]["seq"])


def applied_waivers(log: DecisionLog, record: dict[str, Any]) -> list[AppliedWaiver]:
    """The waivers that turned a deny of the decision into a warning, with their recorded grant."""
    out: list[AppliedWaiver] = []
    for warning in (record.get("decision") or {}).get("warnings") or []:
        wid = warning.get("waiver") if isinstance(warning, dict) else None
        if not isinstance(wid, str) or not wid:
            continue
        granted = ((log.get(f"{WAIVER_KIND}:{wid}") or {}).get("waiver")) or {}
        out.append(
            AppliedWaiver(
                rule=str(warning.get("id")),
                waiver=wid,
                reason=granted.get("reason"),
                approved_by=granted.get("approved_by"),
                expires=granted.get("expires"),
            )
        )
    return out
