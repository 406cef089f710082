"""Shared by every source: reading ownership and approvals from the tags the tag mapping names
(policygate.config.tags, ``POLICYGATE_TAGS__*``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime

from pydantic import BaseModel, ValidationError

from policygate.config.tags import TagMapping
from policygate.evidence import Approval, Ownership


def ownership_from(mapping: TagMapping, *tag_sets: Mapping[str, str]) -> Ownership:
    """Later tag sets override earlier ones (model-version tags over registered-model tags)."""
    merged: dict[str, str] = {}
    for tags in tag_sets:
        merged.update({k: v for k, v in tags.items() if v is not None and str(v).strip()})
    return Ownership(
        owner=merged.get(mapping.owner),
        team=merged.get(mapping.team),
        use_case=merged.get(mapping.use_case),
        risk_tier=(merged.get(mapping.risk_tier) or "").strip().lower() or None,
    )


class _TaggedApproval(BaseModel):
    by: str
    stage: str
    at: str
    decision: str = "approved"


def approvals_from(raw: str | None, source: str) -> tuple[list[Approval], bool]:
    """Parse the approvals tag (a JSON list of {by, stage, at}); returns (approvals, ok).

    A malformed tag is reported as not ok (a gap), never raised: a typo must not crash the gate.
    """
    if raw is None or not raw.strip():
        return [], True
    try:
        items = json.loads(raw)
        if not isinstance(items, list):
            return [], False
        parsed = [_TaggedApproval.model_validate(item) for item in items]
        approvals = [
            Approval(
                by=a.by,
                stage=a.stage.lower(),
                at=_iso(a.at),
                decision="approved" if a.decision.lower() == "approved" else "rejected",
                source=source,
                verified=False,
            )
            for a in parsed
        ]
    except (ValueError, ValidationError):
        return [], False
    return approvals, True


def _iso(value: str) -> str:
    """Normalise to RFC 3339 UTC; raises ValueError for something that is not a time."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_from_millis(ms: int | None) -> str | None:
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
