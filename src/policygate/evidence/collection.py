"""How the evidence was gathered: the sources asked, the gaps, the conflicts."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from policygate.evidence.fields import Part


class SourceStatus(Part):
    """One platform asked for evidence, and whether it answered."""

    platform: str = Field(description="mlflow, azureml, ...")
    endpoint: str | None = Field(default=None, description="Where the source was read (no credentials).")
    ok: bool = Field(description="True when the source answered everything asked of it.")
    required: bool = Field(
        default=True, description="A failed required source makes evidence incomplete (EVD-001)."
    )
    error: str | None = Field(default=None, description="What failed, when ok is false.")
    read_at: str | None = Field(
        default=None,
        description="When the source's answers were read (UTC); before collection.collected_at when "
        "they came from the short evidence cache (POLICYGATE_EVIDENCE_CACHE_TTL_S).",
    )


class Conflict(Part):
    """A field on which platforms disagree."""

    field: str = Field(description="Dotted path of the field the platforms disagree on.")
    values: dict[str, Any] = Field(description="Value per platform.")


class Collection(Part):
    """How the evidence was gathered: sources, gaps and conflicts."""

    collected_at: str | None = Field(default=None, description="ISO-8601 time the evidence was assembled.")
    sources: list[SourceStatus] = Field(
        default_factory=list, description="Each platform asked, and how it went."
    )
    gaps: list[str] = Field(
        default_factory=list, description="Dotted paths of expected fields that are missing."
    )
    conflicts: list[Conflict] = Field(default_factory=list, description="Fields the platforms disagree on.")
