"""decide(): evidence -> OPA -> decision -> log. Fails closed at every step."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from pydantic import ValidationError

from policygate.decisions import asking
from policygate.decisions.approvals import (
    approval_records,
    verified_approvals,
    verified_from,
    with_verified,
)
from policygate.decisions.decision import Decision, EvidenceOrigin, PolicyResult, Reason
from policygate.decisions.lifecycle import lifecycle_events, lifecycle_of
from policygate.decisions.log import DecisionLog, LogError
from policygate.decisions.making import about, as_supplied, log_decision, record_of
from policygate.decisions.opa_event import answered
from policygate.decisions.recorded import recorded_digests
from policygate.engine.errors import EngineError
from policygate.engine.http1 import Http1Pool
from policygate.engine.opa import OpaEngine
from policygate.engine.result import Answer
from policygate.evidence import Approval, Change, EvidenceV1, RecordedDigest, Request, Target, digest
from policygate.metrics import Metrics
from policygate.refs import ModelRef
from policygate.sources.base import SourceError
from policygate.sources.collect import Collector
from policygate.timeutil import now_iso

log = logging.getLogger(__name__)
# A what-if sees approvals recorded up to this many seconds ago (a release decision sees all).
WHAT_IF_APPROVALS_TTL_S = 5.0


def error_reason(code: str, message: str) -> Reason:
    """A reason for an ``error`` outcome: ids start with ERR- so CI output tells them from rule denials."""
    return Reason(id=f"ERR-{code.upper().replace('_', '-')}", message=message, severity="high")


class DecisionService:
    """Collect, evaluate, record. Which failures become an ``error`` decision is drawn in
    :mod:`policygate.errors`: a :class:`~policygate.errors.DecisionError` (a source's
    ``SourceError``, OPA's ``EngineError``), invalid evidence from a source, and anything unforeseen
    while collecting; a ``LogError`` is raised instead, since a decision off the record may not be
    answered."""

    def __init__(
        self,
        engine: OpaEngine | None,
        log: DecisionLog,
        engine_error: EngineError | None = None,
        collector: Collector | None = None,
        rule_ids: list[str] | None = None,
        metrics: Metrics | None = None,
    ):
        self.engine = engine
        self.log = log
        self.engine_error = engine_error
        self.collector = collector or Collector({})
        self.rule_ids = rule_ids or []
        self._rules_at: str | None = None  # the revision rule_ids were read for (unmanaged OPA)
        self.metrics = metrics or Metrics()
        self._verified_cache: dict[str, tuple[float, list[Approval]]] = {}
        # set by the runtime (policy.revisions.Keeper): keeps the files of each revision that decides;
        # True once kept (or when they cannot be kept here)
        self.keep_revision: Callable[[str], bool] | None = None
        self._revisions_kept: set[str] = set()

    def collect(
        self,
        ref: ModelRef,
        target: Target,
        requested_by: str | None = None,
        caller: str | None = None,
        change: Change | None = None,
    ) -> EvidenceV1:
        """Assemble the evidence for a model version; raises SourceError or ValidationError.
        ``change``: the change ticket and CI run the caller named (``request.ticket``, ``.run_url``)."""
        request = Request(
            target=target,
            requested_by=requested_by,
            requested_at=now_iso(),
            caller=caller,
            **(change or Change()).fields(),
        )
        return self.with_recorded_approvals(self.collector.collect(ref, request))

    def with_recorded_approvals(
        self,
        evidence: EvidenceV1,
        verified: list[Approval] | None = None,
        digests: list[RecordedDigest] | None = None,
    ) -> EvidenceV1:
        """Collected evidence with what only the log knows: the approvals policygate itself recorded
        from authenticated callers (the verified ones), and the artifact digests earlier allow
        decisions of the version recorded (INT-002), and its lifecycle (reviews, retirement); read now,
        unless the caller just read them."""
        ref = evidence.subject.ref
        if evidence.lifecycle is None:
            evidence = evidence.model_copy(
                update={"lifecycle": lifecycle_of(lifecycle_events(self.log, ref))}
            )
        records = approval_records(self.log, [ref]) if verified is None or digests is None else {}
        if verified is None:
            verified = verified_from(records[ref])
        if verified:
            evidence = evidence.model_copy(update={"approvals": with_verified(evidence.approvals, verified)})
        if evidence.artifacts is not None:
            if digests is None:
                digests = recorded_digests(self.log, [ref], records)[ref]
            artifacts = evidence.artifacts.model_copy(update={"recorded": digests})
            evidence = evidence.model_copy(update={"artifacts": artifacts})
        return evidence

    async def judge_async(self, doc: dict[str, Any], pool: Http1Pool | None = None) -> Decision:
        """The current policy's decision on collected evidence, not recorded (the audit records its
        own kind); an engine failure is an ``error`` decision, as everywhere. ``pool``: the
        caller's connections to OPA (an event loop of its own)."""
        return await self._decide_async(doc, "collected", pool)

    async def _decide_async(
        self, doc: dict[str, Any], origin: EvidenceOrigin, pool: Http1Pool | None = None
    ) -> Decision:
        """The decision on ``doc``, not yet recorded; an engine failure is an ``error`` decision."""
        try:
            answer, revision = await self._evaluate_async(doc, pool)
            return self._decision_from(answer, doc, revision, origin)
        except EngineError as exc:
            reasons = [error_reason(exc.code, exc.message)]
            return self._error_decision(doc, reasons, await self._revision_or_none_async(), origin)

    def decide(
        self,
        ref: ModelRef,
        target: Target,
        requested_by: str | None = None,
        *,
        caller: str | None = None,
        decision_id: str | None = None,
        change: Change | None = None,
    ) -> Decision:
        """Collect evidence for a model version, evaluate and record; any failure is an error decision.

        ``decision_id`` lets a retried trigger (a webhook delivery) map to one stable decision id;
        ``change`` is recorded in the evidence's request (the ticket and CI run), errors included.
        """
        try:
            with self.metrics.timed(self.metrics.collect_seconds.labels(ref.platform)):
                evidence = self.collect(ref, target, requested_by, caller, change)
        except SourceError as exc:
            self.metrics.source_errors.labels(exc.platform).inc()
            reason = error_reason("source", str(exc))
            return self._failed_collection(ref, target, (requested_by, caller), reason, decision_id, change)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            reason = error_reason(
                "evidence", f"{ref.platform} source produced invalid evidence at {where}: {first['msg']}"
            )
            return self._failed_collection(ref, target, (requested_by, caller), reason, decision_id, change)
        except LogError:
            raise  # the log cannot record: nothing may be answered (the caller says so, 503 / exit 2)
        except Exception as exc:  # noqa: BLE001 - a gate: anything unforeseen in a source is an error decision
            self.metrics.source_errors.labels(ref.platform).inc()
            log.warning("evidence collection for %s failed unexpectedly: %s", ref, type(exc).__name__)
            reason = error_reason(
                "source",
                f"{ref.platform} source failed unexpectedly ({type(exc).__name__}): it answered "
                "something policygate cannot read",
            )
            return self._failed_collection(ref, target, (requested_by, caller), reason, decision_id, change)
        return self.evaluate(evidence, decision_id=decision_id, origin="collected")

    def _failed_collection(
        self,
        ref: ModelRef,
        target: Target,
        who: tuple[str | None, str | None],
        reason: Reason,
        decision_id: str | None,
        change: Change | None = None,
    ) -> Decision:
        request = {"target": target.model_dump(mode="json"), "requested_by": who[0], "caller": who[1]}
        doc = {
            "subject": {"ref": str(ref), "platform": ref.platform, "name": ref.name, "version": ref.version},
            "request": {**request, **(change or Change()).fields()},
        }
        return self.record(self.error(doc, reason, origin="collected"), doc, decision_id)

    def evaluate(
        self,
        evidence: EvidenceV1,
        *,
        decision_id: str | None = None,
        origin: EvidenceOrigin = "supplied",
        caller: str | None = None,
    ) -> Decision:
        """Evaluate a validated evidence document and record the decision.

        ``origin="supplied"`` (the default: a document someone wrote) is a what-if: the claims only
        policygate may make are rebuilt first (:func:`making.as_supplied`) and the decision never counts as
        the model's release decision. :meth:`decide` evaluates what it collected itself."""
        if origin == "supplied":
            evidence = as_supplied(evidence, caller, self._verified_for_what_if(evidence.subject.ref))
        doc = evidence.to_input()
        try:
            answer, revision = self._evaluate(doc)
            decision = self._decision_from(answer, doc, revision, origin)
        except EngineError as exc:
            decision = self.error(doc, error_reason(exc.code, exc.message), origin=origin)
        return self.record(decision, doc, decision_id)

    async def evaluate_async(
        self, evidence: EvidenceV1, *, decision_id: str | None = None, caller: str | None = None
    ) -> Decision:
        """:meth:`evaluate` of supplied evidence for the event loop: the same decision, recorded before
        it is returned, without holding a thread while OPA evaluates or the log commits."""
        ref = evidence.subject.ref
        verified = self._cached_verified(ref)
        if verified is None:  # not seen in the last few seconds: one read, off the event loop
            verified = await anyio.to_thread.run_sync(self._verified_for_what_if, ref)
        doc = as_supplied(evidence, caller, verified).to_input()
        with self.log.coming():  # the group commit waits a moment for this record
            decision = await self._decide_async(doc, "supplied")
        return await self.record_async(decision, doc, decision_id)

    def evidence_of(self, decision_id: str) -> dict[str, Any]:
        """The evidence document a recorded decision was made on (as the log holds it)."""
        record = self.log.get(decision_id) or {}
        evidence = record.get("evidence")
        return evidence if isinstance(evidence, dict) else {}

    def approvals_changed(self, ref: str) -> None:
        """An approval was recorded for ``ref`` here: the next what-if reads them afresh."""
        self._verified_cache.pop(ref, None)

    def _cached_verified(self, ref: str) -> list[Approval] | None:
        hit = self._verified_cache.get(ref)  # one dict read: atomic under the GIL
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def _verified_for_what_if(self, ref: str) -> list[Approval]:
        """The verified approvals a what-if is evaluated with: read from the log at most every
        ``WHAT_IF_APPROVALS_TTL_S`` per model (a release decision, :meth:`decide`, always reads them)."""
        cached = self._cached_verified(ref)
        if cached is not None:
            return cached
        found = verified_approvals(self.log, ref)
        if len(self._verified_cache) > 10_000:
            self._verified_cache.clear()
        self._verified_cache[ref] = (time.monotonic() + WHAT_IF_APPROVALS_TTL_S, found)
        return found

    async def _revision_async(self) -> str:
        """The policy revision; asks OPA (in a thread) only when the cached one is stale."""
        return await asking.revision_async(self._engine())

    async def _revision_or_none_async(self) -> str | None:
        try:
            return await self._revision_async()
        except EngineError:
            return None

    def _engine(self) -> OpaEngine:
        if self.engine is None:
            raise self.engine_error or EngineError("unreachable", "no OPA engine configured")
        return self.engine

    def _evaluate(self, doc: dict[str, Any]) -> tuple[Answer, str]:
        """(OPA's answer, the revision of the policy that produced it): :func:`asking.answer`."""
        return asking.answer(self._engine(), doc, self.metrics)

    async def _evaluate_async(self, doc: dict[str, Any], pool: Http1Pool | None = None) -> tuple[Answer, str]:
        """:meth:`_evaluate` for the event loop."""
        return await asking.answer_async(self._engine(), doc, self.metrics, pool)

    def _rules_for(self, revision: str) -> list[str]:
        """The rule ids of the policy that decided. An OPA policygate does not manage (a sidecar
        pulling bundles) changes policy on its own: its rules are asked again, once, when a decision
        names a revision other than the one they were read for (or none were known yet)."""
        engine = self.engine
        if (
            engine is not None
            and engine.policy_files is None  # not a policy policygate loaded (and so knows the rules of)
            and (revision != self._rules_at or not self.rule_ids)
        ):
            from policygate.engine.catalogue import annotated_rules

            # on failure the rules stay as they were; the decision itself stands
            with contextlib.suppress(EngineError, KeyError, TypeError):
                self.rule_ids = [str(a["custom"]["id"]) for a in annotated_rules(engine)]
            self._rules_at = revision
        return self.rule_ids

    def _decision_from(
        self, answer: Answer, doc: dict[str, Any], revision: str, origin: EvidenceOrigin
    ) -> Decision:
        result = PolicyResult.from_opa(answer.result)
        decision = Decision(
            decision_id=str(uuid.uuid4()),
            outcome=result.outcome,
            allow=result.outcome == "allow",
            reasons=result.deny,
            warnings=result.warn,
            dryrun=result.dryrun,
            rules_checked=self._rules_for(revision),
            policy_revision=revision,
            evidence_digest=digest(doc),
            evidence_origin=origin,
            **about(doc),
        )
        decision._opa = answered(answer, self._engine().cached_instance_id())
        return decision

    def error(self, doc: dict[str, Any] | None, *reasons: Reason, origin: EvidenceOrigin) -> Decision:
        try:
            revision: str | None = self._engine().policy_revision
        except EngineError:  # no engine, or OPA unreachable: the error decision has no revision
            revision = None
        return self._error_decision(doc, list(reasons), revision, origin)

    def _error_decision(
        self, doc: dict[str, Any] | None, reasons: list[Reason], revision: str | None, origin: EvidenceOrigin
    ) -> Decision:
        return Decision(
            decision_id=str(uuid.uuid4()),
            outcome="error",
            allow=False,
            reasons=reasons,
            policy_revision=revision,
            evidence_digest=digest(doc) if doc else None,
            evidence_origin=origin,
            **about(doc or {}),
        )

    def record(
        self, decision: Decision, doc: dict[str, Any] | None, decision_id: str | None = None
    ) -> Decision:
        """Commit the decision (with its evidence) before anyone sees it."""
        decision, args, fields = record_of(decision, doc, decision_id)
        with self.metrics.timed(self.metrics.append_seconds):
            self.log.append(*args, **fields)
        self._recorded(decision)
        self._keep(decision.policy_revision)
        return decision

    async def record_async(
        self, decision: Decision, doc: dict[str, Any] | None, decision_id: str | None = None
    ) -> Decision:
        """:meth:`record` for the event loop: returns once the decision is committed."""
        decision, args, fields = record_of(decision, doc, decision_id)
        with self.metrics.timed(self.metrics.append_seconds):
            await self.log.append_async(*args, **fields)
        self._recorded(decision)
        if self._keeps(decision.policy_revision):  # once per revision: the hot path stays on the loop
            await anyio.to_thread.run_sync(self._keep, decision.policy_revision)
        return decision

    def _keeps(self, revision: str | None) -> bool:
        kept = self._revisions_kept
        return self.keep_revision is not None and revision is not None and revision not in kept

    def _keep(self, revision: str | None) -> None:
        """Keep the policy content of ``revision`` (after the decision is recorded: it never fails one)."""
        if self.keep_revision is None or revision is None or revision in self._revisions_kept:
            return
        try:
            if self.keep_revision(revision):
                self._revisions_kept.add(revision)
        except Exception as exc:  # noqa: BLE001 - the decision stands; the revision is kept on a later one
            log.warning("policy revision %s not kept: %s", revision, type(exc).__name__)

    def _recorded(self, decision: Decision) -> None:
        """Count a committed decision and its reasons (metrics), and say so in the debug log."""
        m = self.metrics
        m.decisions.labels(
            decision.outcome, (decision.target or {}).get("stage") or "", decision.evidence_origin
        ).inc()
        for kind, reasons in (
            ("deny", decision.reasons),
            ("warn", decision.warnings),
            ("dryrun", decision.dryrun),
        ):
            for reason in reasons:
                m.findings.labels(reason.id, kind).inc()
        log_decision(decision)


__all__ = ["DecisionService", "LogError", "error_reason", "now_iso"]
