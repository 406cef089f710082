"""The evidence's ``lifecycle`` from recorded lifecycle events, and who counts as the owner."""

from __future__ import annotations

from collections.abc import Iterable

from policygate.decisions.lifecycle import LifecycleRecord, lifecycle_of, owner_problem
from policygate.evidence import LifecycleKind
from policygate.sources.directory import Entry


def event(kind: LifecycleKind, at: str, by: str = "alice@corp", text: str | None = None) -> LifecycleRecord:
    return LifecycleRecord(
        id=f"lifecycle:{at}", model="mlflow:models:/m/1", kind=kind, by=by, at=at, caller=f"token:{by}",
        reason_or_note=text,
    )  # fmt: skip


def test_nothing_recorded_is_active_and_never_reviewed() -> None:
    life = lifecycle_of([])
    assert life.retired is False and life.last_review_at is None and not life.reviews and not life.events


def test_the_latest_retire_or_unretire_decides() -> None:
    records = [
        event("review", "2026-01-01T00:00:00Z", text="fine"),
        event("retire", "2026-02-01T00:00:00Z", text="old"),
        event("unretire", "2026-03-01T00:00:00Z", by="bob@corp", text="needed"),
        event("review", "2026-04-01T00:00:00Z"),
        event("retire", "2026-05-01T00:00:00Z", text="replaced"),
    ]
    life = lifecycle_of(records)
    assert (life.retired, life.retired_at, life.retired_by, life.retire_reason) == (
        True, "2026-05-01T00:00:00Z", "alice@corp", "replaced",
    )  # fmt: skip
    assert life.last_review_at == "2026-04-01T00:00:00Z" and life.last_reviewed_by == "alice@corp"
    assert [r.at for r in life.reviews] == ["2026-04-01T00:00:00Z", "2026-01-01T00:00:00Z"]  # newest first
    assert [e.kind for e in life.events] == ["review", "retire", "unretire", "review", "retire"]
    assert lifecycle_of(records[:3]).retired is False and lifecycle_of(records[:3]).retired_at is None


class People:
    provider = "file"

    def __init__(self, *entries: Entry) -> None:
        self.entries = {e.id.lower(): e for e in entries}

    def lookup(self, ids: Iterable[str]) -> dict[str, Entry]:
        return {i.lower(): self.entries[i.lower()] for i in ids if i.lower() in self.entries}

    def close(self) -> None:
        pass


def test_the_owner_without_a_directory_is_the_identity_named() -> None:
    assert owner_problem("Alice@Corp", "alice@corp", None) is None
    assert "not the owner" in (owner_problem("bob@corp", "alice@corp", None) or "")
    assert "names no owner" in (owner_problem("alice@corp", None, None) or "")


def test_with_a_directory_the_owner_must_be_an_active_person_there() -> None:
    people = People(
        Entry("alice@corp", True, True, "person"),
        Entry("gone@corp", True, False, "person"),
        Entry("bot@corp", True, True, "service"),
    )
    assert owner_problem("alice@corp", "alice@corp", people) is None
    assert "unknown to the directory" in (owner_problem("eve@corp", "eve@corp", people) or "")
    assert "not an active person" in (owner_problem("gone@corp", "gone@corp", people) or "")
    assert "not an active person" in (owner_problem("bot@corp", "bot@corp", people) or "")
    assert "not the owner" in (owner_problem("alice@corp", "bob@corp", people) or "")
