"""Lifecycle events of a model version (owner reviews, retirement, un-retirement): recorded by
policygate from an authenticated caller as chain records (log kind ``lifecycle``), like approvals,
and read back into the evidence (``lifecycle``, LIF-001 and LIF-002) and the governed record."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from policygate.decisions.log import DecisionLog
from policygate.errors import InputError
from policygate.evidence import Lifecycle, LifecycleEvent, LifecycleKind, LifecycleReview
from policygate.refs import ModelRef
from policygate.sources.directory import Directory
from policygate.timeutil import now_iso

KIND = "lifecycle"  # the log's record kind
MAX_PER_MODEL = 1000


class LifecycleRecord(BaseModel):
    """One lifecycle event as the chain holds it."""

    model_config = ConfigDict(extra="forbid")

    id: str
    model: str
    kind: LifecycleKind
    by: str = Field(description="The authenticated caller (never a value the caller typed).")
    at: str
    caller: str = Field(description="kind:identity of the authenticated caller.")
    reason_or_note: str | None = None

    def event(self) -> LifecycleEvent:
        return LifecycleEvent(kind=self.kind, at=self.at, by=self.by, reason_or_note=self.reason_or_note)


class LifecycleConflict(InputError):
    """The event does not fit the version's state (retire a retired version, unretire an active one)."""


def lifecycle_records(
    log_: DecisionLog, model_refs: list[str], chunk: int = 200
) -> dict[str, list[LifecycleRecord]]:
    """Each version's lifecycle records, oldest first (at most MAX_PER_MODEL, the newest ones), read
    200 versions a query."""
    found: dict[str, list[LifecycleRecord]] = {ref: [] for ref in model_refs}
    for start in range(0, len(model_refs), chunk):
        refs = model_refs[start : start + chunk]
        for row in log_.query(kind=KIND, model=refs, limit=MAX_PER_MODEL * len(refs)):
            body = row.get(KIND)
            if not isinstance(body, dict):
                continue
            record = LifecycleRecord.model_validate(body)
            events = found.setdefault(record.model, [])
            if len(events) < MAX_PER_MODEL:
                events.append(record)
    return {ref: list(reversed(events)) for ref, events in found.items()}


def lifecycle_events(log_: DecisionLog, model_ref: str) -> list[LifecycleRecord]:
    """The version's recorded lifecycle events, oldest first: for the governed record's timeline and
    ``log show`` (each has ``kind``, ``at``, ``by``, ``caller``, ``reason_or_note`` and its log ``id``)."""
    return lifecycle_records(log_, [model_ref])[model_ref]


def lifecycle_of(records: list[LifecycleRecord]) -> Lifecycle:
    """The evidence's ``lifecycle`` from the version's records (oldest first): the latest retire or
    unretire decides ``retired``; reviews newest first."""
    retired: LifecycleRecord | None = None
    for r in records:
        if r.kind == "retire":
            retired = r
        elif r.kind == "unretire":
            retired = None
    reviews = [
        LifecycleReview(at=r.at, by=r.by, note=r.reason_or_note)
        for r in reversed(records)
        if r.kind == "review"
    ]
    return Lifecycle(
        retired=retired is not None,
        retired_at=retired.at if retired else None,
        retired_by=retired.by if retired else None,
        retire_reason=retired.reason_or_note if retired else None,
        last_review_at=reviews[0].at if reviews else None,
        last_reviewed_by=reviews[0].by if reviews else None,
        reviews=reviews,
        events=[r.event() for r in records],
    )


def record_lifecycle(
    log_: DecisionLog,
    ref: ModelRef,
    kind: LifecycleKind,
    by: str,
    caller: str,
    reason_or_note: str | None,
) -> LifecycleRecord:
    """Append one lifecycle event to the chain. A retirement needs a reason and an active version; an
    un-retirement a reason and a retired one (LifecycleConflict / InputError otherwise, nothing
    recorded)."""
    text = reason_or_note if reason_or_note and reason_or_note.strip(" ") else None  # blank: none
    if kind != "review" and text is None:
        raise InputError(f"{kind} needs a reason: say why")
    if kind != "review":
        retired = lifecycle_of(lifecycle_events(log_, str(ref))).retired
        if kind == "retire" and retired:
            raise LifecycleConflict(f"{ref} is already retired")
        if kind == "unretire" and not retired:
            raise LifecycleConflict(f"{ref} is not retired: nothing to undo")
    record = LifecycleRecord(
        id=f"lifecycle:{uuid.uuid4()}",
        model=str(ref),
        kind=kind,
        by=by,
        at=now_iso(),
        caller=caller,
        reason_or_note=text,
    )
    log_.append(KIND, record.id, {KIND: record.model_dump()}, model_ref=record.model)
    return record


def owner_problem(caller_id: str, owner: str | None, directory: Directory | None) -> str | None:
    """Why the caller is not the model's owner; None when they are. With a directory, the caller is
    who the directory resolves them to (found, active, a person); without one, the caller's identity
    must equal the evidence's owner (case-insensitive)."""
    if not owner or not owner.strip():
        return "the model version names no owner (tag owner)"
    if directory is not None:
        entry = directory.lookup([caller_id]).get(caller_id.strip().lower())
        if entry is None or not entry.found:
            return f"{caller_id!r} is unknown to the directory ({directory.provider})"
        if not entry.active or entry.kind != "person":
            return f"{caller_id!r} is not an active person in the directory ({directory.provider})"
        caller_id = entry.id
    if caller_id.strip().lower() != owner.strip().lower():
        return f"{caller_id!r} is not the owner of the model version (the owner is {owner!r})"
    return None


def as_dicts(records: list[LifecycleRecord]) -> list[dict[str, Any]]:
    return [r.model_dump() for r in records]
