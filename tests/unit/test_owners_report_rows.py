"""One row of the owners report (audit.owners.row_of) from the evidence the audit judged: the review
dates from ``lifecycle`` (the lifecycle evidence is built elsewhere; its shape is issue 29's), the
owner's status and the deployment identity's; end to end in tests/integration/test_identity_audit.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from policygate.audit.owners import Params, row_of

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def doc(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "ownership": {"owner": "alice@corp", "risk_tier": "high"},
        "approvals": [
            {"by": "bob@corp", "stage": "production"},
            {"by": "alice@corp", "stage": "production"},  # the owner's own: never counts
            {"by": "erin@corp", "stage": "production"},  # not in model-risk
            {"by": "bob@corp", "stage": "staging"},
        ],
        "identities": {
            "directory": "file",
            "owner": {"id": "alice@corp", "found": True, "active": True, "kind": "person"},
            "approvers": [
                {"id": "bob@corp", "found": True, "active": True, "kind": "person", "groups": ["model-risk"]},
                {"id": "erin@corp", "found": True, "active": True, "kind": "person", "groups": ["risk-ml"]},
            ],
        },
    }
    return {**base, **extra}


PARAMS = Params(review_days={"high": 90, "medium": 180, "low": 365}, approver_groups={"high": ["model-risk"]})


def row(d: dict[str, Any]) -> Any:
    return row_of("mlflow:models:/fraud/3", "production", "alias champion", d, PARAMS, [], NOW)


def test_next_review_due_is_the_last_review_plus_the_tiers_days() -> None:
    r = row(doc(lifecycle={"last_review_at": "2026-10-01T09:00:00Z", "last_reviewed_by": "alice@corp"}))
    assert (r.last_review, r.next_review_due, r.review_overdue) == (
        "2026-10-01T09:00:00Z", "2026-12-30T09:00:00Z", False,
    )  # fmt: skip
    late = row(doc(lifecycle={"last_review_at": "2026-06-01T00:00:00Z"}))
    assert late.next_review_due == "2026-08-30T00:00:00Z" and late.review_overdue
    never = row(doc())
    assert never.last_review is None and never.next_review_due is None and not never.review_overdue


def test_owner_status_counting_approvers_and_deployment_identity() -> None:
    r = row(doc())
    assert r.owner_status == "active" and r.counting_approvers == ["bob@corp"]
    owner = {"id": "alice@corp", "found": True, "active": False, "kind": "person"}
    assert row(doc(identities={**doc()["identities"], "owner": owner})).owner_status == "disabled"
    gone = {**owner, "left": True}
    assert row(doc(identities={**doc()["identities"], "owner": gone})).owner_status == "left"
    assert row(doc(identities={**doc()["identities"], "owner": {"found": False}})).owner_status == "unknown"
    service = {"id": "alice@corp", "found": True, "active": True, "kind": "service"}
    assert row(doc(identities={**doc()["identities"], "owner": service})).owner_status == "service"
    assert row(doc(identities=None)).owner_status == "not checked"
    assert row({}).owner_status == "not checked"

    deployment = {"identity": {"principal_id": "00000000-0000-0000-0000-0000000000aa"}}
    identity = {
        "found": True, "active": True, "kind": "service",
        "owners": [{"id": "dana@corp", "found": True, "active": False, "kind": "person"}],
        "credentials": [{"type": "secret", "expires": "2027-01-01"}],
    }  # fmt: skip
    risky = row(doc(deployment=deployment, identities={**doc()["identities"], "deployment": identity}))
    assert risky.deployment_identity_status == "no active human owner; holds a client secret"
    assert row(doc(deployment=deployment, identities=None)).deployment_identity_status == "not checked"
    assert row(doc()).deployment_identity_status is None
