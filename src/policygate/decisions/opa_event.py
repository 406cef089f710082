"""OPA's own decision-log event for a recorded decision (``policygate log export --format opa``).

The managed OPA keeps no decision log of its own: beside each decision, policygate records what
OPA's decision log would have said about the query (:func:`answered`, :func:`recorded_block`):
OPA's ``result`` exactly as OPA answered it, its query metrics, its labels (the instance id and
version) and the client address that asked policygate. :func:`opa_line` writes the event the way a
stock OPA v1.22.3 with ``decision_logs.console=true`` writes it to its console: one JSON object,
keys sorted, Go's escaping, with the console logger's own fields (``level``, ``msg``, ``time``,
``type``). policygate's own facts (its decision with waivers and verification, the hash chain) go
only under ``custom``.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

from policygate.decisions.queries import StoredRecord
from policygate.engine.errors import BUNDLE, DECISION_PACKAGE, DECISION_RULE
from policygate.engine.result import Answer

OPA_PATH = f"{DECISION_PACKAGE}/{DECISION_RULE}"  # the query OPA answers: data.policygate.decision
# the client address ("host:port") of the HTTP request being answered, set by the API
# (api/client_address.py): OPA's ``requested_by``; unset for the CLI and background work
client_address: ContextVar[str | None] = ContextVar("policygate_client_address", default=None)
# what Go's encoding/json escapes that a JSON writer in Python leaves alone
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def answered(answer: Answer, instance_id: str | None) -> dict[str, Any]:
    """What OPA said about one query: its result as sent, its metrics, its labels, and which engine
    (``http``: an OPA server; ``inprocess``: OPA linked into policygate) answered it."""
    block: dict[str, Any] = {"result": answer.result, "engine": answer.engine}
    if answer.metrics:
        block["metrics"] = answer.metrics
    labels = {k: v for k, v in (("id", instance_id), ("version", answer.version)) if v}
    if labels:
        block["labels"] = labels
    return block


def recorded_block(opa: dict[str, Any] | None) -> dict[str, Any]:
    """The record's ``opa`` entry: OPA's account of the query (when OPA answered) and the client
    address that asked (when the request came over HTTP)."""
    block = dict(opa or {})
    address = client_address.get()
    if address:
        block["requested_by"] = address
    return block


def go_time(iso: str | None, *, nanos: bool = True) -> str | None:
    """A time as Go writes it in UTC: RFC 3339 with the fraction's trailing zeros dropped
    (``time.Time`` in JSON), or to the second (the console logger's ``time``)."""
    if not iso:
        return iso
    when = datetime.fromisoformat(iso)
    when = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{when.microsecond:06d}".rstrip("0") if nanos else ""
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


def opa_event(record: StoredRecord) -> dict[str, Any]:
    """One recorded decision as OPA's console decision-log event. Records made before policygate
    kept OPA's answer (no ``opa`` entry) have no ``result``, ``metrics``, ``labels`` or
    ``requested_by``; ``custom.opa_answer_recorded`` says which kind a line is."""
    body = record.body
    decision: dict[str, Any] = body.get("decision") or {}
    opa = body.get("opa")
    when = decision.get("evaluated_at") or body.get("recorded_at")
    event: dict[str, Any] = {
        "decision_id": record.decision_id,
        "path": OPA_PATH,
        "timestamp": go_time(when),
        "req_id": record.seq,
        # the console logger's own fields, as OPA writes them
        "level": "info",
        "msg": "Decision Log",
        "time": go_time(when, nanos=False),
        "type": "openpolicyagent.org/decision_logs",
    }
    if body.get("evidence") is not None:
        event["input"] = body["evidence"]
    revision = decision.get("policy_revision")
    if revision:
        event["bundles"] = {BUNDLE: {"revision": revision}}
    if isinstance(opa, dict):
        event.update({k: opa[k] for k in ("result", "metrics", "labels", "requested_by") if k in opa})
    if "result" not in event and decision.get("outcome") == "error":
        first = (decision.get("reasons") or [{}])[
            0
        ]  # OPA was not asked, or refused: the first reason says why
        event["error"] = {"code": first.get("id"), "message": first.get("message")}
    event["custom"] = {
        "policygate": {
            "seq": record.seq,
            "recorded_at": body.get("recorded_at"),
            "record_hash": record.record_hash,
            "prev_hash": record.prev_hash,
            "opa_answer_recorded": isinstance(opa, dict) and "result" in opa,
            "decision": decision,
        }
    }
    return event


def opa_line(event: dict[str, Any]) -> str:
    """The event as OPA's console writes it: compact JSON, keys sorted at every level, non-ASCII as
    is, ``<``, ``>``, ``&`` and the line separators escaped (Go's encoding/json)."""
    try:
        text = orjson.dumps(event, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError:  # an integer beyond 64 bits
        text = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in _GO_ESCAPES.items():
        text = text.replace(char, escaped)
    return text
