"""Combine parts from one or more platforms into one EvidenceV1; name conflicts and gaps.

The primary platform (the one the reference names) provides the subject; for
ownership each field takes the primary's value when it has one, and any
disagreement between platforms is listed in ``collection.conflicts`` (ownership
fields, and approvals when both platforms record different ones). Lineage and
deployment are taken whole from the first platform that has them (primary
first), with that platform's gaps; approvals from every platform are kept, each
with its source.
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
    conflicts += _approval_conflicts(parts)
    # lineage and deployment come whole from one platform (the primary's first), and so do their gaps
    lineage_part = next((p for p in parts if p.lineage.run is not None), primary)
    lineage = lineage_part.lineage if lineage_part.lineage.run is not None else Lineage()
    deployment_part = next((p for p in parts if p.deployment is not None), primary)
    deployment = deployment_part.deployment

    def missing(gap: str) -> bool:
        area, _, rest = gap.partition(".")
        if area == "subject":
            return gap in primary.gaps
        if area == "lineage":
            return gap in lineage_part.gaps
        if area == "deployment":
            return gap in deployment_part.gaps
        if area == "ownership":  # filled when any platform provided the field
            return not ownership_values.get(rest)
        if area == "approvals":  # an unreadable approvals record anywhere is missing evidence
            return True
        if area == "artifacts":  # the files are the referenced version's own
            return gap in primary.gaps
        return all(gap in p.gaps for p in parts)

    gaps = sorted({g for p in parts for g in p.gaps if missing(g)})
    approvals = [a for p in parts for a in p.approvals]
    sources = [
        SourceStatus(platform=p.platform, endpoint=p.endpoint, ok=True, read_at=p.read_at) for p in parts
    ] + list(failed)
    return EvidenceV1(
        subject=primary.subject,
        request=request,
        ownership=ownership,
        lineage=lineage,
        approvals=approvals,
        deployment=deployment,
        artifacts=primary.artifacts,
        artifacts_unverified=primary.artifacts_unverified,
        collection=Collection(collected_at=collected_at, sources=sources, gaps=gaps, conflicts=conflicts),
    )


def _approval_conflicts(parts: Sequence[Parts]) -> list[Conflict]:
    """Platforms that each record approvals but not the same ones (by, stage, decision)."""
    recorded = {
        p.platform: sorted({f"{a.by.lower()} {a.stage.lower()} {a.decision}" for a in p.approvals})
        for p in parts
        if p.approvals
    }
    if len(recorded) > 1 and len({tuple(v) for v in recorded.values()}) > 1:
        return [Conflict(field="approvals", values=recorded)]
    return []
