"""Export the decision log as JSONL events, as OPA's own decision-log events, or as a flat CSV.

JSONL events (``--format jsonl``, a contract kept as it was) borrow OPA's decision-log field
names (``decision_id``, ``path``, ``input``, ``timestamp``, ``bundles``/``revision``,
``labels``, ``requested_by``; ``error`` when no policy result was had) but carry policygate's
view: ``result`` is policygate's decision, ``labels`` policygate's, ``requested_by`` the person
named, extras under ``policygate``. ``--format opa`` writes exactly what a stock OPA logs
(:mod:`policygate.decisions.opa_event`). Every writer streams: one record in memory at a time.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import Any, TextIO

from policygate.decisions import opa_event as opa_events
from policygate.decisions.queries import StoredRecord
from policygate.version import __version__

OPA_PATH = opa_events.OPA_PATH


def rfc3339(iso: str | None) -> str | None:
    """OPA writes timestamps as RFC 3339 in UTC with a Z."""
    return iso.replace("+00:00", "Z") if iso else iso


def opa_event(record: StoredRecord) -> dict[str, Any]:
    """One decision as an OPA decision-log event (with ``policygate`` extras)."""
    body = record.body
    decision: dict[str, Any] = body.get("decision") or {}
    revision = decision.get("policy_revision")
    event: dict[str, Any] = {
        "decision_id": record.decision_id,
        "path": OPA_PATH,
        "input": body.get("evidence"),
        "timestamp": rfc3339(body.get("recorded_at")),
        "labels": {"app": "policygate", "version": __version__},
        "requested_by": decision.get("requested_by"),
    }
    if decision.get("outcome") == "error":
        # OPA logs no result when evaluation failed; the first reason says why.
        first = (decision.get("reasons") or [{}])[0]
        event["error"] = {"code": first.get("id"), "message": first.get("message")}
    else:
        event["result"] = {
            "allow": decision.get("allow"),
            "deny": decision.get("reasons", []),
            "warn": decision.get("warnings", []),
            "dryrun": decision.get("dryrun", []),
        }
    if revision:
        event["revision"] = revision
        event["bundles"] = {"policygate": {"revision": revision}}
    event["policygate"] = {
        "seq": record.seq,
        "outcome": decision.get("outcome"),
        "subject": decision.get("subject"),
        "target": decision.get("target"),
        "policy_revision": revision,
        "evidence_digest": decision.get("evidence_digest"),
        "evaluated_at": decision.get("evaluated_at"),
        "record_hash": record.record_hash,
        "prev_hash": record.prev_hash,
    }
    return event


def write_opa(records: Iterable[StoredRecord], out: TextIO) -> int:
    n = 0
    for record in records:
        out.write(opa_events.opa_line(opa_events.opa_event(record)))
        out.write("\n")
        n += 1
    return n


def write_jsonl(records: Iterable[StoredRecord], out: TextIO) -> int:
    n = 0
    for record in records:
        out.write(json.dumps(opa_event(record), separators=(",", ":"), ensure_ascii=False))
        out.write("\n")
        n += 1
    return n


CSV_COLUMNS = [
    "seq",
    "recorded_at",
    "decision_id",
    "model_ref",
    "target",
    "environment",
    "outcome",
    "allow",
    "reasons",
    "warnings",
    "policy_revision",
    "evidence_digest",
    "requested_by",
    "owner",
    "risk_tier",
    "run_id",
    "commit",
    "record_hash",
    "prev_hash",
    "dryrun",  # last, so the columns before keep their positions
]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """Text a spreadsheet will not run: a cell that starts like a formula gets a leading quote."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_row(record: StoredRecord) -> list[str]:
    body = record.body
    decision: dict[str, Any] = body.get("decision") or {}
    evidence: dict[str, Any] = body.get("evidence") or {}
    target = decision.get("target") or {}
    ownership = evidence.get("ownership") or {}
    lineage = evidence.get("lineage") or {}
    values: list[Any] = [
        record.seq,
        rfc3339(body.get("recorded_at")),
        record.decision_id,
        (decision.get("subject") or {}).get("ref"),
        target.get("stage"),
        target.get("environment"),
        decision.get("outcome"),
        str(decision.get("allow")).lower() if decision.get("allow") is not None else None,
        ";".join(r.get("id", "") for r in decision.get("reasons") or []),
        ";".join(r.get("id", "") for r in decision.get("warnings") or []),
        decision.get("policy_revision"),
        decision.get("evidence_digest"),
        decision.get("requested_by"),
        ownership.get("owner"),
        ownership.get("risk_tier"),
        (lineage.get("run") or {}).get("id"),
        (lineage.get("code") or {}).get("commit"),
        record.record_hash,
        record.prev_hash,
        ";".join(r.get("id", "") for r in decision.get("dryrun") or []),
    ]
    return [_cell(v) for v in values]


def write_csv(records: Iterable[StoredRecord], out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    n = 0
    for record in records:
        writer.writerow(csv_row(record))
        n += 1
    return n
