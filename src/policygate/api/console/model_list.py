"""The models page: every model in the log with its latest decision per target, a page at a time.

Paging walks the distinct model references in order along the (model_ref, seq) index (keyset
paging: ``after`` the last reference shown), so a page costs about the same at a thousand decisions
as at a million. Platform and search narrow the walk in SQL; target, outcome and owner are read
from the page's latest decisions, so a page under those filters looks through at most ``budget``
models and says where it stopped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, text

from policygate.decisions.decision import is_release_decision
from policygate.decisions.log import DecisionLog
from policygate.decisions.schema import Record

PAGE = 50
CHUNK = 200  # models read from the index at a time
BUDGET = 5000  # models looked through for one filtered page


@dataclass(frozen=True)
class Filters:
    search: str = ""
    platform: str = ""  # mlflow | azureml
    target: str = ""
    outcome: str = ""  # allow | deny | error
    owner: str = ""

    @property
    def by_latest(self) -> bool:
        return bool(self.target or self.outcome or self.owner)


@dataclass
class Latest:
    stage: str
    outcome: str
    decision_id: str
    recorded_at: str
    policy_revision: str | None


@dataclass
class ModelRow:
    ref: str
    platform: str
    owner: str | None = None
    risk_tier: str | None = None
    latest: dict[str, Latest] = field(default_factory=dict)


@dataclass
class ModelPage:
    rows: list[ModelRow]
    after: str | None  # where the next page starts; None: this was the last
    looked_through: int  # models read for this page
    stopped_early: bool  # a filtered page that hit the budget before filling


def model_page(
    log: DecisionLog, filters: Filters, after: str | None = None, size: int = PAGE, budget: int = BUDGET
) -> ModelPage:
    rows: list[ModelRow] = []
    looked, cursor = 0, after
    while len(rows) < size:
        refs = _refs(log, filters, cursor, CHUNK if filters.by_latest else size - len(rows))
        if not refs:
            return ModelPage(rows, None, looked, False)
        decided = {row.ref: row for row in _rows(log, refs)}
        for ref in refs:  # a reference with approvals only is passed over
            looked += 1
            cursor = ref
            row = decided.get(ref)
            if row is not None and _matches(row, filters):
                rows.append(row)
                if len(rows) == size:
                    break
        if len(rows) < size and looked >= budget:
            return ModelPage(rows, cursor, looked, True)
    more = bool(_refs(log, filters, cursor, 1))
    return ModelPage(rows, cursor if more else None, looked, False)


# A search steps from one distinct reference to the next along the index (a loose index scan: one
# seek per model, not one read per decision), testing each for the substring.
_SEARCH = text(
    """
    WITH RECURSIVE refs(r) AS (
        SELECT MIN(model_ref) FROM decision_log WHERE model_ref > :after
        UNION ALL
        SELECT (SELECT MIN(model_ref) FROM decision_log WHERE model_ref > refs.r)
        FROM refs WHERE refs.r IS NOT NULL
    )
    SELECT r FROM refs
    WHERE r IS NOT NULL AND r LIKE :prefix ESCAPE '\\' AND lower(r) LIKE :pattern ESCAPE '\\'
    LIMIT :limit
    """
)


def _like(text_: str) -> str:
    return text_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _refs(log: DecisionLog, filters: Filters, after: str | None, limit: int) -> list[str]:
    if filters.search:
        params = {
            "after": after or "",
            "prefix": _like(filters.platform + ":") + "%" if filters.platform else "%",
            "pattern": "%" + _like(filters.search.lower()) + "%",
            "limit": limit,
        }
        with log.engine.connect() as conn:
            return [r for r in conn.execute(_SEARCH, params).scalars().all() if r]
    stmt = select(Record.model_ref).where(Record.model_ref.is_not(None)).distinct()
    if after is not None:
        stmt = stmt.where(Record.model_ref > after)
    if filters.platform:
        stmt = stmt.where(Record.model_ref.startswith(filters.platform + ":", autoescape=True))
    stmt = stmt.order_by(Record.model_ref).limit(limit)
    with log.engine.connect() as conn:
        return [r for r in conn.execute(stmt).scalars().all() if r]


def _rows(log: DecisionLog, refs: list[str]) -> list[ModelRow]:
    """Each model with the newest release decision per target (a what-if never counts)."""
    newest = (
        select(Record.model_ref, Record.target_stage, func.max(Record.seq))
        .where(Record.model_ref.in_(refs), Record.kind == "decision")
        .group_by(Record.model_ref, Record.target_stage)
    )
    with log.engine.connect() as conn:
        seqs: dict[tuple[str, str | None], int] = {(m, t): s for m, t, s in conn.execute(newest).all() if m}
        bodies = {
            seq: json.loads(body)
            for seq, body in conn.execute(
                select(Record.seq, Record.body).where(Record.seq.in_(list(seqs.values())))
            ).all()
        }
    rows = {ref: ModelRow(ref, ref.split(":", 1)[0]) for ref in refs}
    owners: dict[str, tuple[int, dict[str, Any]]] = {}
    for (ref, stage), seq in seqs.items():
        body = bodies.get(seq) or {}
        if not is_release_decision(body):  # a what-if is newest: look further back for this model
            body = (
                log.latest_per_target(model=[ref], accept=is_release_decision).get(stage or "unknown") or {}
            )
            if not body:
                continue
        decision = body.get("decision") or {}
        rows[ref].latest[stage or "unknown"] = Latest(
            stage=stage or "unknown",
            outcome=str(decision.get("outcome")),
            decision_id=str(decision.get("decision_id")),
            recorded_at=str(body.get("recorded_at") or ""),
            policy_revision=decision.get("policy_revision"),
        )
        ownership = (body.get("evidence") or {}).get("ownership")
        if isinstance(ownership, dict) and int(body.get("seq") or 0) >= owners.get(ref, (0, {}))[0]:
            owners[ref] = (int(body.get("seq") or 0), ownership)
    for ref, (_, ownership) in owners.items():
        rows[ref].owner, rows[ref].risk_tier = ownership.get("owner"), ownership.get("risk_tier")
    return [rows[ref] for ref in refs if rows[ref].latest]


def _matches(row: ModelRow, filters: Filters) -> bool:
    latest = [row.latest[filters.target]] if filters.target in row.latest else []
    if not filters.target:
        latest = list(row.latest.values())
    if filters.target and not latest:
        return False
    if filters.outcome and not any(d.outcome == filters.outcome for d in latest):
        return False
    return not filters.owner or filters.owner.lower() in (row.owner or "").lower()
