"""Impact analysis: re-evaluate the evidence of recorded decisions with candidate policies.

The candidate runs in its own managed OPA, never the serving one. Each recorded
decision carries the exact evidence document it was made on, and the policies
take ``request.requested_at`` as their reference time, so a replay is
deterministic. Waivers are held as they stood when each decision was made (the
waiver records before it in the chain; the policy compares their expiry with the
request time), so what changes is the policy alone.

Nothing is written to the decision log.

Decisions whose outcome was ``error`` are skipped and counted: their evidence may
be partial (a source failed) and they have no policy outcome to compare with.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policygate.decisions.decision import PolicyResult
from policygate.decisions.log import DecisionLog
from policygate.engine.errors import EngineError
from policygate.engine.opa import OpaEngine
from policygate.errors import PolicygateError
from policygate.policy.timespec import instant_or_duration, rfc3339
from policygate.policy.waivers import DATA_PATH, WaiverState, waiver_records

if TYPE_CHECKING:
    from policygate.policy.report import LoadReport

PAGE = 500


@dataclass
class Change:
    decision_id: str
    recorded_at: str | None
    model: str | None
    target: str | None
    direction: str
    old_outcome: str
    new_outcome: str
    reasons_added: list[str] = field(default_factory=list)
    reasons_removed: list[str] = field(default_factory=list)
    warnings_added: list[str] = field(default_factory=list)
    warnings_removed: list[str] = field(default_factory=list)
    dryrun_added: list[str] = field(default_factory=list)
    dryrun_removed: list[str] = field(default_factory=list)
    error: str | None = None
    recorded_policy_revision: str | None = None


@dataclass
class ReplayReport:
    candidate: str
    candidate_revision: str
    since: str | None
    model: str | None
    replayed: int = 0
    skipped_errors: int = 0
    skipped_incomplete: int = 0
    changes: list[Change] = field(default_factory=list)
    recorded_revisions: Counter[str] = field(default_factory=Counter)
    waiver_epochs: int = 0
    elapsed_s: float = 0.0

    @property
    def exit_code(self) -> int:
        """0 nothing changes; 1 an outcome flips or deny reasons change; 3 only warn/dry-run changes."""
        if not self.changes:
            return 0
        if any(c.old_outcome != c.new_outcome or c.reasons_added or c.reasons_removed for c in self.changes):
            return 1
        return 3

    @property
    def changed(self) -> int:
        return len(self.changes)

    @property
    def rate(self) -> float:
        return self.replayed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def directions(self) -> dict[str, int]:
        return dict(sorted(Counter(c.direction for c in self.changes).items()))

    def tally(self, attr: str) -> dict[str, int]:
        """Rule id -> how many changed decisions gained (or lost) it."""
        counts: Counter[str] = Counter()
        for c in self.changes:
            counts.update(getattr(c, attr))
        return dict(sorted(counts.items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": {"policy_dir": self.candidate, "policy_revision": self.candidate_revision},
            "since": self.since,
            "model": self.model,
            "replayed": self.replayed,
            "skipped": {
                "error": self.skipped_errors,
                "incomplete": self.skipped_incomplete,
                "why": "error decisions may carry partial evidence and have no policy outcome to compare",
            },
            "changed": self.changed,
            "unchanged": self.replayed - self.changed,
            "exit_code": self.exit_code,
            "by_direction": self.directions(),
            "reasons_added": self.tally("reasons_added"),
            "reasons_removed": self.tally("reasons_removed"),
            "warnings_added": self.tally("warnings_added"),
            "warnings_removed": self.tally("warnings_removed"),
            "dryrun_added": self.tally("dryrun_added"),
            "dryrun_removed": self.tally("dryrun_removed"),
            "changes": [asdict(c) for c in self.changes],
            "recorded_policy_revisions": dict(self.recorded_revisions),
            "elapsed_s": round(self.elapsed_s, 3),
            "decisions_per_s": round(self.rate, 1),
        }


class _WaiverEpochs:
    """The standing waivers at any point of the chain (they change only at waiver records)."""

    def __init__(self, log: DecisionLog) -> None:
        state = WaiverState()
        self.starts: list[int] = [0]
        self.sets: list[list[dict[str, Any]]] = [[]]
        for record in waiver_records(log):
            state.apply(record)
            self.starts.append(int(record["seq"]))
            self.sets.append([w.policy_doc() for w in state.standing()])

    def epoch(self, seq: int) -> int:
        """Index of the set in force for a decision at ``seq`` (records strictly before it)."""
        return bisect.bisect_left(self.starts, seq) - 1


def _ids(reasons: Any) -> list[str]:
    return sorted({str(r.get("id")) for r in reasons or [] if isinstance(r, dict)})


def _diff(old: list[str], new: list[str]) -> tuple[list[str], list[str]]:
    return sorted(set(new) - set(old)), sorted(set(old) - set(new))


def compare(record: dict[str, Any], result: PolicyResult | None, error: str | None) -> Change | None:
    """The change between a recorded decision and the candidate's result; None when identical."""
    old = record["decision"]
    old_outcome = str(old.get("outcome"))
    new: dict[str, list[dict[str, Any]]]
    if result is None:
        new_outcome, new = "error", {"reasons": [], "warnings": [], "dryrun": []}
    else:
        new_outcome = result.outcome
        new = {
            "reasons": [r.model_dump() for r in result.deny],
            "warnings": [r.model_dump() for r in result.warn],
            "dryrun": [r.model_dump() for r in result.dryrun],
        }
    ra, rr = _diff(_ids(old.get("reasons")), _ids(new["reasons"]))
    wa, wr = _diff(_ids(old.get("warnings")), _ids(new["warnings"]))
    da, dr = _diff(_ids(old.get("dryrun")), _ids(new["dryrun"]))
    if old_outcome == new_outcome and not (ra or rr or wa or wr or da or dr):
        return None
    if old_outcome != new_outcome:
        direction = f"{old_outcome}->{new_outcome}"
    elif ra or rr:
        direction = f"{old_outcome}->{new_outcome} (reasons changed)"
    else:
        direction = f"{old_outcome}->{new_outcome} (warnings/dry-run changed)"
    return Change(
        decision_id=str(old.get("decision_id", record.get("id"))),
        recorded_at=record.get("recorded_at"),
        model=(old.get("subject") or {}).get("ref"),
        target=(old.get("target") or {}).get("stage"),
        direction=direction,
        old_outcome=old_outcome,
        new_outcome=new_outcome,
        reasons_added=ra,
        reasons_removed=rr,
        warnings_added=wa,
        warnings_removed=wr,
        dryrun_added=da,
        dryrun_removed=dr,
        error=error,
        recorded_policy_revision=old.get("policy_revision"),
    )


def _result(answer: dict[str, Any] | EngineError) -> tuple[PolicyResult | None, str | None]:
    """The candidate's checked result for one document, or why there is none."""
    try:
        if isinstance(answer, EngineError):
            raise answer
        return PolicyResult.from_opa(answer), None
    except EngineError as exc:
        return None, f"{exc.code}: {exc.message}"


def replay(
    log: DecisionLog,
    engine: OpaEngine,
    *,
    candidate: str,
    since: datetime | None = None,
    model: str | None = None,
    workers: int = 4,
) -> ReplayReport:
    """Replay every recorded decision (newest first, in pages) against ``engine`` (the candidate)."""
    started = time.perf_counter()
    report = ReplayReport(
        candidate=candidate,
        candidate_revision=engine.policy_revision,
        since=rfc3339(since) if since else None,
        model=model,
    )
    epochs = _WaiverEpochs(log)
    pushed: int | None = None
    before: int | None = None
    while True:
        page = log.query(kind="decision", model=model, since=since, before_seq=before, limit=PAGE)
        groups: dict[int, list[dict[str, Any]]] = {}
        for record in page:
            decision = record.get("decision") or {}
            evidence = record.get("evidence")
            if decision.get("outcome") == "error":
                report.skipped_errors += 1
                continue
            if not isinstance(evidence, dict) or not evidence.get("subject") or not evidence.get("request"):
                report.skipped_incomplete += 1
                continue
            groups.setdefault(epochs.epoch(int(record["seq"])), []).append(record)
        for epoch in sorted(groups, reverse=True):
            if epoch != pushed:
                engine.put_data(DATA_PATH, epochs.sets[epoch])
                pushed = epoch
            records = groups[epoch]
            decided = engine.evaluate_many([r["evidence"] for r in records], workers=workers)
            for record, answer in zip(records, decided, strict=True):
                result, error = _result(answer)
                report.replayed += 1
                report.recorded_revisions[str(record["decision"].get("policy_revision"))] += 1
                change = compare(record, result, error)
                if change is not None:
                    report.changes.append(change)
        if len(page) < PAGE:
            break
        before = int(page[-1]["seq"])
    report.waiver_epochs = len(epochs.sets)
    report.elapsed_s = time.perf_counter() - started
    return report


def since_of(text: str, now: datetime) -> datetime | None:
    """A replay's ``since``: a duration back from ``now`` (30d, 12h), an RFC 3339 time, or ``all``
    (None: every decision); TimeSpecError otherwise."""
    if text.strip().lower() == "all":
        return None
    return instant_or_duration(text, now, future=False)


class CandidateRefused(PolicygateError):
    """The candidate policies fail a check any load runs: nothing can be replayed with them."""

    def __init__(self, policy_dir: Path, report: LoadReport) -> None:
        super().__init__(f"candidate policies in {policy_dir} are refused")
        self.report = report


def load_candidate(
    binary: str, policy_dir: Path, examples_dir: Path | None, *, timeout_s: float
) -> OpaEngine:
    """The candidate's own OPA, after every load check (CandidateRefused when one fails); the caller
    closes it."""
    from policygate.policy.load import load_policy

    loaded, candidate = load_policy(binary, policy_dir, examples_dir, timeout_s=timeout_s)
    if candidate is None:
        raise CandidateRefused(policy_dir, loaded)
    return candidate
