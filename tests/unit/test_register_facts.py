"""The register's approvals that counted: approval.rego's reading of an approvals list (the target
stage's approvals no later entry of the same reviewer took back), without a log (nothing recorded)."""

from __future__ import annotations

from typing import Any, cast

from policygate.audit.release_facts import counted_approvals
from policygate.decisions.log import DecisionLog


class NothingRecorded:
    """A log that holds no approval records: every approval read is the platform's."""

    def query(self, **_: Any) -> list[dict[str, Any]]:
        return []


def record(*approvals: dict[str, Any], stage: str = "production") -> dict[str, Any]:
    return {"seq": 9, "decision": {"target": {"stage": stage}}, "evidence": {"approvals": list(approvals)}}


def entry(by: str, at: str, decision: str = "approved", stage: str = "production") -> dict[str, Any]:
    return {"by": by, "at": at, "decision": decision, "stage": stage, "source": "mlflow:tag"}


def counted(rec: dict[str, Any]) -> list[tuple[str, str | None]]:
    log = cast(DecisionLog, NothingRecorded())
    return [(a.by, a.at) for a in counted_approvals(log, ["mlflow:models:/m/1"], rec)]


def test_the_target_stage_approvals_count() -> None:
    rec = record(
        entry("bob@corp", "2026-11-01T00:00:00Z"), entry("eve@corp", "2026-11-01T00:00:00Z", stage="staging")
    )
    assert counted(rec) == [("bob@corp", "2026-11-01T00:00:00Z")]


def test_a_later_withdrawal_by_the_same_reviewer_takes_it_back() -> None:
    rec = record(
        entry("bob@corp", "2026-11-01T00:00:00Z"),
        entry("BOB@corp", "2026-11-02T00:00:00Z", "withdrawn"),
        entry("carol@corp", "2026-11-03T00:00:00Z"),
        entry("carol@corp", "2026-11-02T00:00:00Z", "rejected"),  # before her approval: it stands
    )
    assert counted(rec) == [("carol@corp", "2026-11-03T00:00:00Z")]


def test_an_entry_without_a_time_takes_back_every_approval_of_its_reviewer() -> None:
    rec = record(
        entry("bob@corp", "2026-11-01T00:00:00Z"),
        {"by": "bob@corp", "stage": "production", "decision": "withdrawn"},
    )
    assert counted(rec) == []


def test_an_unreadable_time_takes_back_too() -> None:
    rec = record(entry("bob@corp", "2026-11-01T00:00:00Z"), entry("bob@corp", "yesterday", "withdrawn"))
    assert counted(rec) == []
    offset = record(
        entry("bob@corp", "2026-11-01T10:00:00+02:00"), entry("bob@corp", "2026-11-01T09:00:00Z", "withdrawn")
    )
    assert counted(offset) == []  # 09:00Z is after 08:00Z: compared as times, not as text
