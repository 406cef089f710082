"""The register's csv columns are a contract (CI jobs and access-review sheets read them): the columns it
first shipped with keep their names and places; new ones are added at the end."""

from __future__ import annotations

from policygate.output.register_output import COLUMNS

SHIPPED = (
    "model", "target", "via", "owner_at_release", "owner_now", "owner_changed", "decision_id", "outcome",
    "decided_at", "requested_by", "sent_by", "policy_revision", "run", "commit", "datasets", "ticket",
    "run_url", "audit_outcome", "findings",
)  # fmt: skip


def test_the_shipped_columns_keep_their_places() -> None:
    assert COLUMNS[: len(SHIPPED)] == SHIPPED


def test_later_columns_are_added_at_the_end() -> None:
    assert COLUMNS[len(SHIPPED) :] == ("approvals", "withdrawn", "waivers", "owner_now_status")
