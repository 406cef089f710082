"""One audit run: list what is in use, judge each model version against the current policy, name the
findings, record the run in the chain (kind ``audit``, never a release decision).

A version whose listing fingerprint, and the policy revision, are what the previous run saw is not
collected again (its evidence is re-read from the run that collected it) but is still judged now,
so what expires with time (an approval's age) is caught; every version is collected afresh at least
every ``POLICYGATE_AUDIT_FULL_EVERY_S``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from policygate.audit.enforce import enforce
from policygate.audit.findings import (
    AuditedModel,
    AuditRun,
)
from policygate.audit.inventory import InUse, Listing
from policygate.audit.judge import Judge, Judged
from policygate.config import Settings
from policygate.decisions.approvals import approval_records, verified_from
from policygate.decisions.decision import Decision
from policygate.decisions.lifecycle import LifecycleRecord, lifecycle_of, lifecycle_records
from policygate.decisions.log import DecisionLog, LogError
from policygate.decisions.recorded import recorded_digests
from policygate.decisions.service import DecisionService, error_reason
from policygate.engine.errors import EngineError
from policygate.evidence import Approval, EvidenceV1, RecordedDigest, Request, Target, digest
from policygate.refs import RefError, parse
from policygate.sources.base import SourceError
from policygate.timeutil import iso, parse_iso

log = logging.getLogger(__name__)

KIND = "audit"
REQUESTER = "policygate-audit"
PLATFORMS = ("mlflow", "azureml")
JUDGE_CONCURRENCY = 16  # OPA queries in flight at once


def record_id(run_id: str) -> str:
    return f"audit:{run_id}"


def latest_run(log_: DecisionLog) -> AuditRun | None:
    found = log_.query(kind=KIND, limit=1)
    return AuditRun.model_validate(found[0]["audit"]) if found else None


def get_run(log_: DecisionLog, run_id: str) -> AuditRun | None:
    body = log_.get(run_id if run_id.startswith("audit:") else record_id(run_id))
    return AuditRun.model_validate(body["audit"]) if body and "audit" in body else None


class Auditor:
    """Audits with a running service's collector, engine and log (``open_runtime``)."""

    def __init__(
        self,
        service: DecisionService,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        writeback: Any = None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.clock = clock
        self.writeback = writeback
        self._documents: dict[str, dict[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    @property
    def log(self) -> DecisionLog:
        return self.service.log

    def run(self, platforms: Iterable[str] | None = None, target: str | None = None) -> AuditRun:
        """Audit, record the run, return it. Raises LogError only when the run cannot be recorded."""
        started, t0 = self.clock(), time.perf_counter()
        wanted = list(platforms or ())
        run = AuditRun(
            run_id=str(uuid.uuid4()),
            started_at=iso(started),
            platforms=wanted or [p for p in PLATFORMS if self._configured(p)],
            target=target,
            complete=True,
        )
        try:
            run.policy_revision = self.service._engine().policy_revision
        except EngineError as exc:
            run.errors.append(f"policy: {exc.message}")
        listings = [self._list(p, target, explicit=bool(wanted)) for p in run.platforms]
        items = [item for listing in listings for item in listing.items]
        run.calls = sum(listing.calls for listing in listings)
        run.errors += [f"{listing.platform}: {listing.error}" for listing in listings if listing.error]
        previous = self._previous(run.policy_revision, started)
        by_ref: dict[str, list[InUse]] = {}
        for item in items:
            by_ref.setdefault(item.ref, []).append(item)
        workers = self.settings.audit_concurrency
        with ThreadPoolExecutor(max_workers=workers) as pool:  # the platforms: threads
            evidence = list(
                pool.map(lambda ref: self._evidence_or_failure(run, by_ref[ref], previous), by_ref)
            )
        subjects = sorted({str(e.raw["subject"]["ref"]) for e in evidence if e.raw is not None})
        approvals = approval_records(self.log, subjects)  # a few queries, not one per model
        verified = {ref: verified_from(records) for ref, records in approvals.items()}
        digests = recorded_digests(self.log, subjects, approvals)
        lifecycles = lifecycle_records(self.log, subjects)  # reviews and retirements, batched likewise
        pairs = [
            (item, e, n == 0)
            for ref, e in zip(by_ref, evidence, strict=True)
            for n, item in enumerate(by_ref[ref])
        ]
        docs = [self._input(e, item, verified, digests, lifecycles) for item, e, _ in pairs]
        decisions = asyncio.run(self._decide_all(docs))  # OPA: concurrent queries on a loop of its own
        judge = Judge(self.log, self.settings)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(
                pool.map(lambda n: judge.judge(*pairs[n], docs[n], decisions[n]), range(len(pairs)))
            )
        for (_, e, _), (audited, findings) in zip(pairs, results, strict=True):
            if e.collected and e.raw is not None and audited.document is not None:
                run.documents[audited.document] = e.raw  # the collected documents, kept in the run by digest
            run.models.append(audited)
            run.findings += findings
        run.calls += sum(m.calls for m in run.models)
        run.unreached = sorted({f.model for f in run.findings if f.kind == "unreachable"})
        run.complete = not run.errors and not run.unreached
        enforce(run, self.settings, self.writeback, record_id(run.run_id), self.clock)
        finished = self.clock()
        run.finished_at = iso(finished)
        run.duration_s = round(time.perf_counter() - t0, 3)
        self.log.append(KIND, record_id(run.run_id), {"audit": run.model_dump(mode="json")},
                        policy_revision=run.policy_revision)  # fmt: skip
        self.service.metrics.audit_observed(run)
        log.info(
            "audit %s: %d models, %d findings (%s), %s",
            run.run_id,
            len(run.models),
            len(run.findings),
            ", ".join(f"{k} {n}" for k, n in run.counts().items() if n) or "none",
            run.status,
        )
        return run

    # -- listing --

    def _configured(self, platform: str) -> bool:
        if platform == "mlflow":
            return "mlflow" in self.service.collector.sources
        azure = self.settings.azure
        return bool(
            (azure.subscription_id and azure.resource_group and azure.workspace)
            or azure.foundry_project_endpoint
        )

    def _list(self, platform: str, target: str | None, *, explicit: bool) -> Listing:
        if platform not in PLATFORMS:
            return Listing(platform, error=f"unknown platform (choose {' or '.join(PLATFORMS)})")
        source = self.service.collector.sources.get(platform)
        if source is None or not self._configured(platform):
            hint = "MLFLOW_TRACKING_URI" if platform == "mlflow" else "POLICYGATE_AZURE__WORKSPACE"
            error = f"no {platform} source configured (set {hint})" if explicit else None
            return Listing(platform, error=error)
        if platform == "mlflow":
            from policygate.audit.mlflow_inventory import list_in_use as mlflow_in_use

            return mlflow_in_use(source, self.settings.webhook_alias_stages, target)  # type: ignore[arg-type]
        stage = self.settings.audit_azure_target
        if target is not None and target != stage:
            return Listing(platform)
        from policygate.audit.azureml_inventory import list_in_use as azure_in_use

        return azure_in_use(source, stage, self.settings.audit_foundry_publishers)  # type: ignore[arg-type]

    # -- what the previous run saw --

    def _previous(self, revision: str | None, now: datetime) -> dict[tuple[str, str], AuditedModel]:
        """Models of the previous run whose evidence may be reused now (same policy revision, judged,
        collected within POLICYGATE_AUDIT_FULL_EVERY_S)."""
        try:
            before = latest_run(self.log)
        except (LogError, ValidationError) as exc:
            log.warning("audit: previous run unreadable, collecting everything: %s", type(exc).__name__)
            return {}
        if before is None or revision is None or before.policy_revision != revision:
            return {}
        with self._lock:  # its own documents are read back from it, not from the log a second time
            self._documents[record_id(before.run_id)] = before.documents
        reusable: dict[tuple[str, str], AuditedModel] = {}
        for m in before.models:
            if (
                m.outcome is None
                or m.outcome == "error"
                or not (m.fingerprint and m.document and m.evidence_in)
            ):
                continue
            at = parse_iso(m.collected_at)
            if at is None or (now - at).total_seconds() > self.settings.audit_full_every_s:
                continue
            reusable[(m.model, m.target)] = m
        return reusable

    def _document(self, record: str, key: str) -> dict[str, Any] | None:
        with self._lock:
            documents = self._documents.get(record)
        if documents is None:
            body = self.log.get(record) or {}
            documents = (body.get("audit") or {}).get("documents") or {}
            with self._lock:
                self._documents[record] = documents
        return documents.get(key)

    # -- one model version --

    def _evidence_or_failure(
        self, run: AuditRun, items: list[InUse], previous: dict[tuple[str, str], AuditedModel]
    ) -> Judged:
        try:
            return self._evidence(run, items, previous)
        except LogError:
            raise
        except Exception as exc:  # noqa: BLE001 - an audit must go on: this model is unreachable
            log.warning("audit of %s failed unexpectedly: %s", items[0].ref, type(exc).__name__)
            return Judged(failure=error_reason("audit", f"could not audit ({type(exc).__name__})"))

    async def _decide_all(self, docs: list[dict[str, Any] | None]) -> list[Decision | None]:
        engine = self.service.engine
        pool = engine.new_pool() if engine is not None else None
        limit = asyncio.Semaphore(JUDGE_CONCURRENCY)

        async def decide(doc: dict[str, Any] | None) -> Decision | None:
            if doc is None:
                return None
            async with limit:
                return await self.service.judge_async(doc, pool)

        try:
            return list(await asyncio.gather(*(decide(doc) for doc in docs)))
        finally:
            if pool is not None:
                pool.close()

    def _evidence(
        self, run: AuditRun, items: list[InUse], previous: dict[tuple[str, str], AuditedModel]
    ) -> Judged:
        first = items[0]
        priors = [previous.get((i.ref, i.target)) for i in items]
        prior = priors[0]
        if (
            prior is not None
            and all(
                p is not None and p.fingerprint == i.fingerprint for p, i in zip(priors, items, strict=True)
            )
            and first.fingerprint is not None
        ):
            assert prior.evidence_in and prior.document
            raw = self._document(prior.evidence_in, prior.document)
            if raw is not None and digest(raw) == prior.document:  # a changed record is never reused
                seen = {i.target: p for i, p in zip(items, priors, strict=True) if p is not None}
                return Judged(raw, False, prior.collected_at, prior.evidence_in, prior=seen)
        try:
            ref = parse(first.ref)
        except RefError as exc:
            # a deployment of something no registry version can be (e.g. a publisher's model version)
            failure = error_reason("source", f"{first.ref} is no registered model version: {exc}")
            return Judged(failure=failure, not_registered=True)
        request = self._request(first.target)
        collected_at = iso(self.clock())
        try:
            evidence = self.service.collector.collect(ref, request)
        except SourceError as exc:
            self.service.metrics.source_errors.labels(exc.platform).inc()
            return Judged(failure=error_reason("source", str(exc)), not_registered=exc.not_found)
        except ValidationError as exc:
            where = ".".join(str(p) for p in exc.errors()[0]["loc"])
            return Judged(
                failure=error_reason("evidence", f"{first.platform} produced invalid evidence at {where}")
            )
        raw = evidence.to_input()
        calls = self.service.collector.last_calls
        return Judged(raw, True, collected_at, record_id(run.run_id), calls)

    def _input(
        self,
        evidence: Judged,
        item: InUse,
        verified: dict[str, list[Approval]],
        digests: dict[str, list[RecordedDigest]],
        lifecycles: dict[str, list[LifecycleRecord]],
    ) -> dict[str, Any] | None:
        """The document judged: the collected evidence, the approvals recorded through policygate as
        of now, and a request for this target at the audit's time (None: no evidence to judge)."""
        if evidence.raw is None:
            return None
        request = self._request(item.target)
        try:
            collected = EvidenceV1.model_validate(evidence.raw).model_copy(update={"request": request})
        except ValidationError as exc:  # a stored document this version cannot read: not judged
            evidence.failure = error_reason(
                "evidence", f"stored evidence unreadable: {exc.errors()[0]['msg']}"
            )
            return None
        ref = collected.subject.ref
        if collected.lifecycle is None:
            collected = collected.model_copy(update={"lifecycle": lifecycle_of(lifecycles.get(ref, []))})
        facts = self.service.with_recorded_approvals(collected, verified.get(ref, []), digests.get(ref, []))
        return facts.to_input()

    def _request(self, stage: str) -> Request:
        """The audit asks for this target at the audit's time (the policy's "now")."""
        return Request(target=Target(stage=stage), requested_by=REQUESTER, requested_at=iso(self.clock()))  # type: ignore[arg-type]
