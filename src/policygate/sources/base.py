"""What every evidence source provides, and how it fails."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from policygate.evidence import Approval, Deployment, Lineage, Ownership, Subject
from policygate.refs import ModelRef


class SourceError(Exception):
    """A source could not answer; ``call`` names what failed (for the reason shown to the caller)."""

    def __init__(self, platform: str, call: str, message: str, *, not_found: bool = False) -> None:
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


class EvidenceSource(Protocol):
    platform: str

    def collect(self, ref: ModelRef) -> Parts:
        """Read everything this platform knows about the model version; raise SourceError on failure."""
        ...
