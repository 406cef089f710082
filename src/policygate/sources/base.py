"""What every evidence source provides, and how it fails."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from policygate.errors import DecisionError
from policygate.evidence import (
    Approval,
    Artifacts,
    ArtifactsUnverified,
    Deployment,
    Lineage,
    Ownership,
    Subject,
)
from policygate.logredact import redact
from policygate.refs import ModelRef


def gaps_of(subject: Subject, ownership: Ownership, approvals_ok: bool, lineage: Lineage) -> list[str]:
    """The expected fields a platform left empty or unreadable, the same for every source
    (``collection.gaps``: EVD-001 and the rules that own the fields read them)."""
    gaps = [f"ownership.{f}" for f in ("owner", "risk_tier", "use_case") if not getattr(ownership, f)]
    if not subject.created_at:
        gaps.append("subject.created_at")
    if not approvals_ok:
        gaps.append("approvals")
    if lineage.run is None:
        gaps.append("lineage.run")
    else:
        if not lineage.code.commit:
            gaps.append("lineage.code.commit")
        if not any(d.context in (None, "training") for d in lineage.datasets):
            gaps.append("lineage.datasets")
    return gaps


def first_line(value: object) -> str:
    """The first line of a message, at most 300 characters (what an error names of an answer)."""
    text = str(value or "").strip()
    return text.splitlines()[0][:300] if text else ""


class SourceError(DecisionError):
    """A source could not answer; ``call`` names what failed (for the reason shown to the caller)."""

    def __init__(self, platform: str, call: str, message: str, *, not_found: bool = False) -> None:
        message = redact(message)  # a client library's error may quote a URL with its token
        super().__init__(f"{platform}: {call}: {message}")
        self.platform = platform
        self.call = call
        self.message = message
        self.not_found = not_found


@dataclass
class Parts:
    """One platform's contribution to the evidence document."""

    platform: str
    endpoint: str
    subject: Subject
    ownership: Ownership = field(default_factory=Ownership)
    lineage: Lineage = field(default_factory=Lineage)
    approvals: list[Approval] = field(default_factory=list)
    deployment: Deployment | None = None
    gaps: list[str] = field(default_factory=list)
    calls: int = 0
    read_at: str | None = None  # when the answers were read, if earlier than the collection (a cache)
    artifacts: Artifacts | None = None  # the version's files (the primary platform's only)
    artifacts_unverified: ArtifactsUnverified | None = None  # or why they could not be hashed


class EvidenceSource(Protocol):
    platform: str

    def collect(self, ref: ModelRef) -> Parts:
        """Read everything this platform knows about the model version; raise SourceError on failure."""
        ...

    def probe(self) -> str | None:
        """For /readyz: None when the platform answers (or is not probed), else what is wrong."""
        ...

    def close(self) -> None:
        """Release connections and threads; the source is not used afterwards."""
        ...
