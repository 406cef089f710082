"""What is in use: one entry per model version serving a target, as a platform lists it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class InUse:
    """A model version serving a target, and how (an alias, an online deployment, a Foundry deployment).

    ``spellings`` are the references a release decision for it may have been recorded under;
    ``fingerprint`` is a digest of what the listing shows about the version (its tags, run,
    source): equal fingerprints let a later run reuse the evidence it collected (None: always
    collected).
    """

    ref: str
    platform: str
    name: str
    version: str
    target: str
    via: str
    alias: str | None = None
    spellings: tuple[str, ...] = ()
    fingerprint: str | None = None

    def about(self) -> dict[str, Any]:
        """What names it in an audited model and in each of its findings."""
        return {"model": self.ref, "platform": self.platform, "name": self.name, "version": self.version,
                "target": self.target, "via": self.via}  # fmt: skip


@dataclass
class Listing:
    """A platform's models in use; ``error`` when it could not be listed (the run is incomplete)."""

    platform: str
    items: list[InUse] = field(default_factory=list)
    error: str | None = None
    calls: int = 0
