"""The model version's lifecycle as policygate recorded it: owner reviews and retirement (LIF-001,
LIF-002). Only the decision log knows it; a collection fills it from there."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from policygate.evidence.fields import Part, line

LifecycleKind = Literal["review", "retire", "unretire"]


class LifecycleReview(Part):
    """One owner review: the owner re-confirmed they answer for the model, its use case and tier."""

    at: str = Field(max_length=64, description="ISO-8601 time of the review.")
    by: str = Field(max_length=400, description="The authenticated owner who reviewed.")
    note: str | None = line(2000, "What the owner noted.")


class LifecycleEvent(Part):
    """One recorded lifecycle event, oldest first."""

    kind: LifecycleKind = Field(description="review, retire or unretire.")
    at: str = Field(max_length=64, description="ISO-8601 time of the event.")
    by: str = Field(max_length=400, description="The authenticated caller who recorded it.")
    reason_or_note: str | None = line(2000, "The reason (retire, unretire) or the note (review).")


class Lifecycle(Part):
    """Reviews and retirement of the version, from the decision log's lifecycle records."""

    retired: bool = Field(default=False, description="Retired now (the latest retire is not undone).")
    retired_at: str | None = line(64, "When the current retirement was recorded; null when not retired.")
    retired_by: str | None = line(400, "Who retired it; null when not retired.")
    retire_reason: str | None = line(2000, "Why it was retired; null when not retired.")
    last_review_at: str | None = line(64, "The latest owner review; null when never reviewed.")
    last_reviewed_by: str | None = line(400, "Who made the latest owner review.")
    reviews: list[LifecycleReview] = Field(default_factory=list, description="Owner reviews, newest first.")
    events: list[LifecycleEvent] = Field(
        default_factory=list, description="Every lifecycle event, oldest first."
    )
