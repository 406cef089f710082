"""The service's Prometheus metrics (``GET /metrics``), on a registry of its own per service, so
two services in one process (tests, an embedding application) never share or clash.

What to alert on is in docs/operations.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from policygate.audit.findings import AuditRun

# seconds: a decision from supplied evidence takes about a millisecond, one from MLflow tens
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.decisions = Counter(
            "policygate_decisions",
            "Decisions recorded, by outcome, target stage and evidence origin (collected|supplied).",
            ["outcome", "target", "origin"],
            registry=r,
        )
        self.findings = Counter(
            "policygate_rule_findings",
            "Reasons in recorded decisions, by rule id (ERR-* for errors) and kind (deny|warn|dryrun).",
            ["rule", "kind"],
            registry=r,
        )
        self.collect_seconds = Histogram(
            "policygate_collect_seconds", "Evidence collection time, by platform.", ["platform"],
            buckets=BUCKETS, registry=r,
        )  # fmt: skip
        self.evaluate_seconds = Histogram(
            "policygate_evaluate_seconds", "OPA evaluation time of one decision.", buckets=BUCKETS, registry=r
        )
        self.append_seconds = Histogram(
            "policygate_log_append_seconds",
            "Time until a decision's record is committed to the log.",
            buckets=BUCKETS,
            registry=r,
        )
        self.source_errors = Counter(
            "policygate_source_errors",
            "Evidence collections that failed, by platform.",
            ["platform"],
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "policygate_webhook_deliveries",
            "Webhook deliveries, by source (mlflow|eventgrid) and result "
            "(accepted|duplicate|ignored|refused|test).",
            ["source", "result"],
            registry=r,
        )
        self.rate_limited = Counter(
            "policygate_rate_limited",
            "Requests refused with 429, by reason (caller|failed_auth).",
            ["reason"],
            registry=r,
        )

        self.checkpoint_refusals = Counter(
            "policygate_checkpoint_refusals",
            "Checkpoints not signed or not countersigned, by reason: own (the log no longer extends the "
            "last signed checkpoint: decision_log_tampered), witness (the witness refused it), unreachable "
            "(no witness answered; the checkpoint was written without its cosignature).",
            ["reason"],
            registry=r,
        )

        self.audit_started = Gauge(
            "policygate_audit_last_run_start_timestamp_seconds",
            "When the last audit run started.",
            registry=r,
        )
        self.audit_finished = Gauge(
            "policygate_audit_last_run_end_timestamp_seconds", "When the last audit run ended.", registry=r
        )
        self.audit_duration = Gauge(
            "policygate_audit_last_run_duration_seconds", "How long the last audit run took.", registry=r
        )
        self.audit_models = Gauge(
            "policygate_audit_models_audited", "Models in use the last audit run audited.", registry=r
        )
        self.audit_findings = Gauge(
            "policygate_audit_findings",
            "Findings of the last audit run by kind (drift|bypass|missed-event|unreachable), rule, severity.",
            ["kind", "rule", "severity"],
            registry=r,
        )
        self.audit_complete = Gauge(
            "policygate_audit_last_run_complete",
            "1 when the last audit run listed and audited every model in use, else 0.",
            registry=r,
        )
        self.audit_runs = Counter(
            "policygate_audit_runs",
            "Audit runs, by status (clean|findings|incomplete).",
            ["status"],
            registry=r,
        )

    def audit_observed(self, run: AuditRun, *, count: bool = True) -> None:
        """The figures of the last audit run (replacing the previous run's findings); ``count``: a run
        made now (not one read back from the log at start-up)."""
        from policygate.timeutil import parse_iso

        for gauge, at in ((self.audit_started, run.started_at), (self.audit_finished, run.finished_at)):
            parsed = parse_iso(at)
            if parsed is not None:
                gauge.set(parsed.timestamp())
        self.audit_duration.set(run.duration_s or 0.0)
        self.audit_models.set(len(run.models))
        self.audit_complete.set(1 if run.complete else 0)
        self.audit_findings.clear()
        counts: dict[tuple[str, str, str], int] = {}
        for f in run.findings:
            for rule in f.reasons:
                key = (f.kind, rule, f.severity)
                counts[key] = counts.get(key, 0) + 1
        for labels, n in counts.items():
            self.audit_findings.labels(*labels).set(n)
        if count:
            self.audit_runs.labels(run.status).inc()

    def gauge(self, name: str, doc: str, read: Callable[[], float]) -> None:
        """A value read when scraped (OPA restarts, queue depths)."""
        Gauge(name, doc, registry=self.registry).set_function(read)

    @contextmanager
    def timed(self, histogram: Histogram) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            histogram.observe(time.perf_counter() - started)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
