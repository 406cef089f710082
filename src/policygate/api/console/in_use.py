"""The models in use with no release decision (bypasses), from the latest audit run: the console's
model list shows them beside the decided models, so it holds the register's population."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import or_, select

from policygate.api.console.model_list import Filters
from policygate.audit.findings import AuditRun
from policygate.audit.run import latest_run
from policygate.decisions.log import DecisionLog
from policygate.decisions.schema import Record


@dataclass
class Bypassed:
    ref: str
    platform: str
    target: str
    via: str
    owner: str | None
    findings: list[str] = field(default_factory=list)


@dataclass
class InUse:
    run_id: str
    audited_at: str | None
    rows: list[Bypassed]


def bypassed(log: DecisionLog, filters: Filters) -> InUse | None:
    """The latest audit run's models in use that no release decision covers for their target, under
    the list's filters (an outcome filter leaves none: they have no decision). None: no audit run."""
    run = latest_run(log)
    if run is None:
        return None
    decided = _decided(log, sorted({m.model for m in run.models}))
    rows: list[Bypassed] = []
    for m in run.models:
        if (m.model, m.target) in decided or filters.outcome:
            continue
        if (filters.target and m.target != filters.target) or (
            filters.platform and m.platform != filters.platform
        ):
            continue
        if filters.search and filters.search.lower() not in m.model.lower():
            continue
        owner = _owner(run, m.document)
        if filters.owner and filters.owner.lower() not in (owner or "").lower():
            continue
        findings = [
            f"{f.kind}:{','.join(f.reasons)}"
            for f in run.findings
            if f.model == m.model and f.target == m.target and f.via == m.via
        ]
        rows.append(Bypassed(m.model, m.platform, m.target, m.via, owner, findings))
    rows.sort(key=lambda r: (r.ref, r.target, r.via))
    return InUse(run.run_id, run.finished_at or run.started_at, rows)


def _decided(log: DecisionLog, refs: list[str]) -> set[tuple[str, str]]:
    """(model, target) pairs with a release decision (what-ifs on supplied evidence never count)."""
    if not refs:
        return set()
    stmt = (
        select(Record.model_ref, Record.target_stage)
        .where(Record.kind == "decision", Record.model_ref.in_(refs))
        .where(or_(Record.evidence_origin.is_(None), Record.evidence_origin != "supplied"))
        .distinct()
    )
    with log.engine.connect() as conn:
        return {(str(m), str(t)) for m, t in conn.execute(stmt).all()}


def _owner(run: AuditRun, document: str | None) -> str | None:
    """The owner in the evidence the run collected (a reused document is on the model's page)."""
    found = run.documents.get(document or "") or {}
    owner = (found.get("ownership") or {}).get("owner")
    return str(owner) if owner else None
