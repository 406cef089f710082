"""Reads of the decision log: one record, filtered pages newest first, the newest decision per target
or release, every record streamed in chain order, and the hashes a checkpoint names.

:class:`LogQueries` is the read half of :class:`policygate.decisions.log.DecisionLog`: it needs only
the log's engine (and its URL, to name the log in errors), never the writer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, or_, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from policygate.decisions.database import LogError
from policygate.decisions.decision import is_release_decision
from policygate.decisions.schema import Record
from policygate.timeutil import as_utc

FINDINGS = ("reasons", "warnings", "dryrun")
_LATEST_PAGE = 20


def has_finding(body: dict[str, Any], rule: str) -> bool:
    """Whether a recorded decision has a finding (deny reason, warning, dry-run) of rule ``rule``."""
    decision = body.get("decision") or {}
    return any(
        isinstance(r, dict) and r.get("id") == rule for key in FINDINGS for r in decision.get(key) or []
    )


def mentions(rule: str) -> Any:
    """A cheap SQL pre-filter for :func:`has_finding`: the body's text has the id as a JSON string.
    (Rule ids hold no LIKE wildcards: they match ^[A-Z]{2,5}-[0-9]{3}$, checked by every caller.)"""
    return Record.body.like(f'%"{rule}"%')


def _in_period(stmt: Any, since: datetime | None, until: datetime | None) -> Any:
    """``stmt`` narrowed to the records recorded from ``since`` (inclusive) to ``until`` (exclusive)."""
    if since:
        stmt = stmt.where(Record.recorded_at >= as_utc(since))
    if until:
        stmt = stmt.where(Record.recorded_at < as_utc(until))
    return stmt


@dataclass(frozen=True)
class StoredRecord:
    """One row of the log as stored: the hashed body plus its place in the chain."""

    seq: int
    kind: str
    decision_id: str
    body: dict[str, Any]
    prev_hash: str
    record_hash: str


class LogQueries:
    """The read queries of a decision log open at ``url`` with ``engine``."""

    url: str
    engine: Engine

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    def get(self, record_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            body = conn.execute(select(Record.body).where(Record.decision_id == record_id)).scalar()
        return json.loads(body) if body else None

    def query(
        self,
        *,
        model: str | Sequence[str] | None = None,
        outcome: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before_seq: int | None = None,
        limit: int = 50,
        kind: str | None = "decision",
        rule: str | None = None,
        release: bool = False,
    ) -> list[dict[str, Any]]:
        """Records newest first, filtered; keyset pagination on ``seq`` (pass the last seq seen).

        ``model`` may be several spellings of one model reference (as typed, canonical). ``rule``:
        only decisions with a finding of that rule id (a deny reason, warning or dry-run finding).
        ``release``: only release decisions (no what-if on supplied evidence takes a place in ``limit``).
        """
        if rule is None:
            return self._query(model, outcome, target, since, until, before_seq, limit, kind, None, release)
        found: list[dict[str, Any]] = []
        while len(found) < limit:  # the text pre-filter may match elsewhere; the exact test decides
            page = self._query(model, outcome, target, since, until, before_seq, limit, kind, rule, release)
            found += [r for r in page if has_finding(r, rule)]
            if len(page) < limit:
                break
            before_seq = int(page[-1]["seq"])
        return found[:limit]

    def _query(
        self,
        model: str | Sequence[str] | None,
        outcome: str | None,
        target: str | None,
        since: datetime | None,
        until: datetime | None,
        before_seq: int | None,
        limit: int,
        kind: str | None,
        rule: str | None,
        release: bool = False,
    ) -> list[dict[str, Any]]:
        stmt = select(Record.body).order_by(Record.seq.desc()).limit(limit)
        if release:
            stmt = stmt.where(or_(Record.evidence_origin.is_(None), Record.evidence_origin != "supplied"))
        if rule:
            stmt = stmt.where(mentions(rule))
        if kind:
            stmt = stmt.where(Record.kind == kind)
        if isinstance(model, str):
            stmt = stmt.where(Record.model_ref == model)
        elif model is not None:
            stmt = stmt.where(Record.model_ref.in_(list(model)))
        if outcome:
            stmt = stmt.where(Record.outcome == outcome)
        if target:
            stmt = stmt.where(Record.target_stage == target)
        stmt = _in_period(stmt, since, until)
        if before_seq is not None:
            stmt = stmt.where(Record.seq < before_seq)
        with self.engine.connect() as conn:
            return [json.loads(b) for b in conn.execute(stmt).scalars()]

    def outcome_counts(self, *, model: Sequence[str]) -> dict[str, int]:
        """How many decisions one model has, per outcome."""
        stmt = (
            select(Record.outcome, func.count())
            .where(Record.model_ref.in_(list(model)), Record.kind == "decision")
            .group_by(Record.outcome)
        )
        with self.engine.connect() as conn:
            return {str(outcome): int(n) for outcome, n in conn.execute(stmt).all()}

    def latest_per_target(
        self, *, model: Sequence[str], accept: Callable[[dict[str, Any]], bool] | None = None
    ) -> dict[str, dict[str, Any]]:
        """The newest decision for each target stage of one model that ``accept`` takes (all, when
        None); newest first along the (model, target, seq) index, usually one probe per stage."""
        models = list(model)
        with self.engine.connect() as conn:
            stages = (
                conn.execute(
                    select(Record.target_stage)
                    .where(Record.model_ref.in_(models), Record.kind == "decision")
                    .distinct()
                )
                .scalars()
                .all()
            )
            found: dict[str, dict[str, Any]] = {}
            for stage in stages:
                before: int | None = None
                while True:
                    stmt = (
                        select(Record.seq, Record.body)
                        .where(Record.model_ref.in_(models), Record.kind == "decision")
                        .where(
                            Record.target_stage.is_(None) if stage is None else Record.target_stage == stage
                        )
                        .order_by(Record.seq.desc())
                        .limit(_LATEST_PAGE)
                    )
                    if before is not None:
                        stmt = stmt.where(Record.seq < before)
                    rows = conn.execute(stmt).all()
                    body = next(
                        (b for b in (json.loads(r.body) for r in rows) if accept is None or accept(b)), None
                    )
                    if body is not None:
                        found[stage or "unknown"] = body
                        break
                    if len(rows) < _LATEST_PAGE:
                        break
                    before = rows[-1].seq
        return found

    def latest_release(
        self, *, model: Sequence[str], target: str | None, outcome: str | None = None
    ) -> dict[str, Any] | None:
        """The newest release decision (collected evidence, never a what-if) of one version for one
        target, optionally of one outcome: one seek per origin on the (model, target, evidence origin,
        outcome, seq) index, so no number of what-ifs can hide it. LogError if the column and the hashed
        body disagree (a changed row: ``log verify`` names it)."""
        base = select(Record.seq, Record.body).where(
            Record.kind == "decision",
            Record.model_ref.in_(list(model)),
            Record.target_stage.is_(None) if target is None else Record.target_stage == target,
        )
        if outcome is not None:
            base = base.where(Record.outcome == outcome)
        newest: Any = None
        with self.engine.connect() as conn:
            for origin in (Record.evidence_origin == "collected", Record.evidence_origin.is_(None)):
                row = conn.execute(base.where(origin).order_by(Record.seq.desc()).limit(1)).first()
                if row is not None and (newest is None or row.seq > newest.seq):
                    newest = row
        if newest is None:
            return None
        body: dict[str, Any] = json.loads(newest.body)
        if not is_release_decision(body):
            raise LogError(f"record {newest.seq}: its evidence origin column differs from its hashed body")
        return body

    def records(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        kind: str | None = None,
        batch_size: int = 1000,
        rule: str | None = None,
        model: Sequence[str] | None = None,
    ) -> Iterator[StoredRecord]:
        """Every record in chain order, streamed in keyset batches (constant memory at any size).

        Each batch is its own short query, so an export never holds a long transaction
        open against writers.
        """
        after = 0
        while True:
            stmt = (
                select(
                    Record.seq,
                    Record.kind,
                    Record.decision_id,
                    Record.body,
                    Record.prev_hash,
                    Record.record_hash,
                )
                .where(Record.seq > after)
                .order_by(Record.seq)
                .limit(batch_size)
            )
            if kind:
                stmt = stmt.where(Record.kind == kind)
            stmt = _in_period(stmt, since, until)
            if rule:
                stmt = stmt.where(mentions(rule))
            if model:  # the spellings of one model reference
                stmt = stmt.where(Record.model_ref.in_(list(model)))
            try:
                with self.engine.connect() as conn:
                    rows = conn.execute(stmt).all()
            except SQLAlchemyError as exc:
                raise LogError(f"could not read decision log {self.safe_url}: {type(exc).__name__}") from exc
            for row in rows:
                body = json.loads(row.body)
                if rule and not has_finding(body, rule):
                    continue
                yield StoredRecord(row.seq, row.kind, row.decision_id, body, row.prev_hash, row.record_hash)
            if len(rows) < batch_size:
                return
            after = rows[-1].seq

    def has_id_prefix(self, prefix: str) -> bool:
        """Whether some record's id starts with ``prefix``."""
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self.engine.connect() as conn:
            found = conn.execute(
                select(Record.seq).where(Record.decision_id.like(pattern, escape="\\")).limit(1)
            ).first()
        return found is not None

    def first_hash(self) -> str | None:
        """The hash of the first record (the log's identity in a checkpoint); None when empty."""
        with self.engine.connect() as conn:
            first = conn.execute(select(Record.record_hash).order_by(Record.seq).limit(1)).scalar()
        return str(first) if first is not None else None

    def hash_at(self, seq: int) -> str | None:
        """The hash of record ``seq``; None when there is no such record."""
        with self.engine.connect() as conn:
            found = conn.execute(select(Record.record_hash).where(Record.seq == seq)).scalar()
        return str(found) if found is not None else None
