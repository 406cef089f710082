"""Combine parts from one or more platforms into one EvidenceV1; name conflicts and gaps.

The primary platform (the one the reference names) provides the subject; for
ownership each field takes the primary's value when it has one, and any
disagreement between platforms is listed in ``collection.conflicts``.
"""

from __future__ import annotations

from collections.abc import Sequence

from policygate.evidence import (
    Collection,
    Conflict,
    EvidenceV1,
    Lineage,
    Ownership,
    Request,
    SourceStatus,
)
from policygate.sources.base import Parts

_OWNERSHIP_FIELDS = ("owner", "team", "use_case", "risk_tier")


def merge(
    parts: Sequence[Parts],
    request: Request,
    collected_at: str,
    failed: Sequence[SourceStatus] = (),
) -> EvidenceV1:
    primary = parts[0]
    ownership_values: dict[str, dict[str, str]] = {f: {} for f in _OWNERSHIP_FIELDS}
    for p in parts:
        for f in _OWNERSHIP_FIELDS:
            value = getattr(p.ownership, f)
            if value:
                ownership_values[f][p.platform] = value
    ownership = Ownership(**{f: next(iter(v.values()), None) for f, v in ownership_values.items()})
    conflicts = [
        Conflict(field=f"ownership.{f}", values=values)
        for f, values in ownership_values.items()
        if len({str(v).strip().lower() for v in values.values()}) > 1
    ]
    lineage = next((p.lineage for p in parts if p.lineage.run is not None), Lineage())
    # a gap is filled when any platform provided the field
    gaps = sorted(
        set(primary.gaps).intersection(*[set(p.gaps) for p in parts[1:]]) if parts[1:] else primary.gaps
    )
    gaps = [g for g in gaps if not (g.startswith("ownership.") and ownership_values[g.split(".", 1)[1]])]
    approvals = [a for p in parts for a in p.approvals]
    deployment = next((p.deployment for p in parts if p.deployment is not None), None)
    sources = [SourceStatus(platform=p.platform, endpoint=p.endpoint, ok=True) for p in parts] + list(failed)
    return EvidenceV1(
        subject=primary.subject,
        request=request,
        ownership=ownership,
        lineage=lineage,
        approvals=approvals,
        deployment=deployment,
        collection=Collection(collected_at=collected_at, sources=sources, gaps=gaps, conflicts=conflicts),
    )
