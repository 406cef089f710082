"""What is true now about one model version, beside what was decided: every approval with its state
now (standing, withdrawn, rejected, unverified), who sent each decision, whether the owner changed
since the release, the alias moves policygate saw, and where the latest audit run found it in use.

The governed record (``decisions.record``) says what the log holds about the decisions; this adds
what later records say about them (withdrawals, later evidence, audit runs, webhook deliveries), so
``log show``, ``GET /v1/models/{ref}/record`` and the console tell the same story. A model in use
that was never decided (a bypass) gets a record too: what the audit saw, with no decision.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from policygate.audit.documents import judged_document
from policygate.decisions.aliases import AliasSeen, delivered_aliases
from policygate.decisions.decision import is_release_decision
from policygate.decisions.lifecycle import lifecycle_events, lifecycle_of
from policygate.decisions.log import DecisionLog
from policygate.decisions.record import governed_record, model_spellings
from policygate.refs import RefError, parse
from policygate.timeutil import parse_iso

AUDIT_RUNS = 20  # newest audit runs read for alias moves and the owner now (each body holds its documents)
NO_ALIAS_HISTORY = (
    "MLflow keeps no alias history of its own: these are only the moves policygate saw, in webhook "
    "deliveries and between consecutive audit runs; a move (and a move back) between two observations "
    "is not seen."
)
TAKEN_BACK = ("withdrawn", "rejected")


def record_now(log: DecisionLog, ref: str, *, history: int = 50) -> dict[str, Any] | None:
    """The governed record of ``ref`` with what is true now; for a model in use with no decision, the
    audit's view of it (the latest run's, else the newest of the last AUDIT_RUNS that saw it). None:
    policygate knows nothing of it (no decision, in no recent audit run)."""
    spellings = model_spellings(ref)
    runs = _audit_runs(log)
    in_use = _in_use(log, runs[0], spellings) if runs else []
    earlier = [] if in_use else next((f for run in runs[1:] if (f := _in_use(log, run, spellings))), [])
    record = governed_record(log, ref, history=history)
    if record is None:
        if not in_use and not earlier:
            return None
        record = _bypass(ref, in_use or earlier)
    for summary in [*record["latest_decisions"].values(), *record["history"]]:
        summary["sent_by"] = summary.get("caller")
    record["in_use"] = in_use
    record["last_in_use"] = earlier  # not in use at the latest audit run, but in an earlier one
    record["approvals_now"] = approvals_now(record)
    record["owner_since_release"] = _owner(log, record, spellings, runs)
    record["alias_moves"] = alias_moves(log, record["model"], runs)
    record["alias_moves_note"] = NO_ALIAS_HISTORY
    events = lifecycle_events(log, record["model"])
    record["lifecycle"] = [e.model_dump() for e in events]
    record["retired"] = lifecycle_of(events).retired  # the latest retire or un-retire decides
    return record


def _bypass(ref: str, in_use: list[dict[str, Any]]) -> dict[str, Any]:
    """The record of a model in use that no release decision covers: the audit's view only."""
    return {
        "model": in_use[0]["model"] if in_use else ref,
        "no_release_decision": True,
        "subject": None,
        "owner": in_use[0].get("owner"),
        "risk_tier": None,
        "ownership": {"owner": in_use[0]["owner"]} if in_use[0].get("owner") else None,
        "lineage": None,
        "policy_revision": None,
        "latest_evidence": None,
        "latest_decisions": {},
        "approvals": [],
        "recorded_approvals": [],
        "decisions": {"total": 0, "allow": 0, "deny": 0, "error": 0},
        "history": [],
        "history_complete": True,
    }


def _audit_runs(log: DecisionLog) -> list[dict[str, Any]]:
    """The newest audit runs (their recorded bodies), newest first."""
    return [r["audit"] for r in log.query(kind="audit", limit=AUDIT_RUNS) if isinstance(r.get("audit"), dict)]


def _when(run: dict[str, Any]) -> str:
    return str(run.get("finished_at") or run.get("started_at") or "")


def _document(log: DecisionLog, run: dict[str, Any], model: dict[str, Any]) -> dict[str, Any]:
    evidence_in = model.get("evidence_in")
    return judged_document(
        log, run.get("documents") or {}, model.get("document"), str(evidence_in) if evidence_in else None
    )


def _in_use(log: DecisionLog, run: dict[str, Any], spellings: list[str]) -> list[dict[str, Any]]:
    """Where the latest audit run found the model in use, with the owner and findings it saw."""
    found: list[dict[str, Any]] = []
    for m in run.get("models") or []:
        if m.get("model") not in spellings:
            continue
        document = _document(log, run, m)
        found.append(
            {
                "model": m.get("model"),
                "target": m.get("target"),
                "via": m.get("via"),
                "alias": m.get("alias"),
                "owner": (document.get("ownership") or {}).get("owner") if document else None,
                "audit_outcome": m.get("outcome"),
                "release_decision": m.get("release_decision"),
                "findings": [
                    {k: f.get(k) for k in ("kind", "reasons", "severity", "message")}
                    for f in run.get("findings") or []
                    if f.get("model") == m.get("model")
                    and f.get("target") == m.get("target")
                    and f.get("via") == m.get("via")
                ],
                "run_id": run.get("run_id"),
                "audited_at": _when(run),
            }
        )
    return found


def approvals_now(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Every approval the log holds or the evidence showed, with its state now: ``withdrawn`` or
    ``rejected`` when the same reviewer's later entry for the stage took it back (when, by whom, why),
    else ``unverified`` when policygate did not record it from an authenticated caller, else
    ``standing``. The reviewer's latest entry wins, as in approval.rego."""
    entries = [
        {**a, "source": "policygate", "verified": True} for a in record.get("recorded_approvals") or [] if a
    ]
    recorded = {(str(a.get("by", "")).lower(), a.get("stage"), a.get("at")) for a in entries}
    for a in record.get("approvals") or []:
        if (str(a.get("by", "")).lower(), a.get("stage"), a.get("at")) not in recorded:
            entries.append(dict(a))
    entries.sort(key=lambda a: str(a.get("at") or ""))
    now: list[dict[str, Any]] = []
    for i, entry in enumerate(entries):
        decision = entry.get("decision") or "approved"
        key = (str(entry.get("by", "")).lower(), entry.get("stage"))
        later = [
            e
            for e in entries[i + 1 :]
            if (str(e.get("by", "")).lower(), e.get("stage")) == key
            and (e.get("decision") in TAKEN_BACK or e.get("withdraws") == entry.get("id"))
        ]
        if decision in TAKEN_BACK and any(
            (str(e.get("by", "")).lower(), e.get("stage")) == key
            and (e.get("decision") or "approved") == "approved"
            for e in entries[:i]
        ):
            continue  # shown on the approval it took back
        state = decision if decision in TAKEN_BACK else "standing"
        taken = later[0] if later and decision == "approved" else None
        if taken is not None:
            state = str(taken.get("decision"))
        elif state == "standing" and not entry.get("verified"):
            state = "unverified"
        now.append(
            {
                "by": entry.get("by"),
                "stage": entry.get("stage"),
                "decision": decision,
                "at": entry.get("at"),
                "source": entry.get("source"),
                "verified": bool(entry.get("verified")),
                "id": entry.get("id"),
                "state": state,
                "taken_back": None
                if taken is None
                else {
                    "decision": taken.get("decision"),
                    "at": taken.get("at"),
                    "by": taken.get("by"),
                    "sent_by": taken.get("caller"),
                    "reason": taken.get("comment"),
                    "id": taken.get("id"),
                    "verified": bool(taken.get("verified")),
                },
            }
        )
    return now


def _owner(
    log: DecisionLog, record: dict[str, Any], spellings: list[str], runs: list[dict[str, Any]]
) -> dict[str, Any]:
    """The owner in the release decision's evidence against the owner in the newest evidence policygate
    has seen for the version (a later decision's or an audit run's), naming where each came from."""
    releases = log.latest_per_target(model=spellings, accept=is_release_decision) if record["history"] else {}
    allowed = [r for r in releases.values() if (r.get("decision") or {}).get("outcome") == "allow"]
    release = max(allowed or list(releases.values()), key=lambda r: int(r.get("seq") or 0), default=None)
    then = None
    if release is not None:
        then = {
            "owner": ((release.get("evidence") or {}).get("ownership") or {}).get("owner"),
            "source": "release decision",
            "id": (release.get("decision") or {}).get("decision_id"),
            "at": release.get("recorded_at"),
        }
    candidates: list[dict[str, Any]] = []
    latest = record.get("latest_evidence")
    if latest:
        candidates.append(
            {
                "owner": ((latest.get("evidence") or {}).get("ownership") or {}).get("owner"),
                "source": "decision",
                "id": latest.get("decision_id"),
                "at": latest.get("recorded_at"),
            }
        )
    for run in runs:  # newest first: the first run that read evidence for this version
        seen = next(
            (m for m in run.get("models") or [] if m.get("model") in spellings and m.get("document")), None
        )
        if seen is not None:
            document = _document(log, run, seen)
            if document:
                candidates.append(
                    {
                        "owner": (document.get("ownership") or {}).get("owner"),
                        "source": "audit run",
                        "id": run.get("run_id"),
                        "at": _when(run),
                    }
                )
                break
    newest = max(candidates, key=lambda c: parse_iso(c.get("at")) or _EPOCH, default=None)
    return {
        "at_release": then,
        "now": newest,
        "changed": then is not None and newest is not None and then["owner"] != newest["owner"],
    }


def alias_moves(log: DecisionLog, ref: str, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The alias moves policygate saw that concern this version, oldest first: a webhook delivery setting
    an alias, or two consecutive observations (deliveries, complete audit runs) that differ."""
    try:
        model = parse(ref)
    except RefError:
        return []
    if model.platform != "mlflow" or model.version is None:
        return []
    seen = [*delivered_aliases(log, model), *audited_aliases(model.name, runs)]
    seen.sort(key=lambda s: (parse_iso(s.at) or _EPOCH, s.seen_by))
    last: dict[str, AliasSeen] = {}
    moves: list[dict[str, Any]] = []
    for s in seen:
        before = last.get(s.alias)
        last[s.alias] = s
        moved = before.version != s.version if before is not None else s.seen_by == "webhook"
        if not moved or model.version not in (s.version, before.version if before else None):
            continue
        moves.append(
            {
                "at": s.at,
                "alias": s.alias,
                "from_version": before.version if before else None,
                "to_version": s.version,
                "seen_by": s.seen_by,
                "record": s.record,
                "previous_observation": None
                if before is None
                else {"at": before.at, "seen_by": before.seen_by},
            }
        )
    return moves


def audited_aliases(name: str, runs: list[dict[str, Any]]) -> list[AliasSeen]:
    """Each complete audit run's view of the model's aliases; an alias it did not list (on a target it
    audited) was not there then."""
    seen: list[AliasSeen] = []
    targets: dict[str, str] = {}  # alias -> the target it served when last listed
    for run in reversed(runs):  # oldest first
        if (
            not run.get("complete")
            or run.get("errors")
            or "mlflow" not in (run.get("platforms") or ["mlflow"])
        ):
            continue
        listed: dict[str, str] = {}
        for m in run.get("models") or []:
            if m.get("platform") == "mlflow" and m.get("name") == name and m.get("alias"):
                listed[str(m["alias"])] = str(m.get("version"))
                targets[str(m["alias"])] = str(m.get("target"))
        at, rid = _when(run), str(run.get("run_id"))
        for alias, target in targets.items():
            if alias in listed or run.get("target") in (None, target):
                seen.append(AliasSeen(at, alias, listed.get(alias), "audit", f"audit run {rid}"))
    return seen


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
