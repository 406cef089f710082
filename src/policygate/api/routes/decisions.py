"""Decide, evaluate evidence, and read recorded decisions."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from policygate.api.auth import Caller, principal_of, requester
from policygate.api.deps import Service, service_of
from policygate.api.routes.policy import explained
from policygate.decisions.decision import Decision
from policygate.decisions.record import model_spellings
from policygate.evidence import ONE_LINE, RUN_URL, RUN_URL_MAX, TICKET_MAX, Change, EvidenceV1, Target
from policygate.policy.params import rule_id
from policygate.policy.waivers import RULE_ID_INPUT_PATTERN
from policygate.refs import MODEL_REF_MAX, MODEL_REF_PATTERN, parse

router = APIRouter(prefix="/v1", tags=["decisions"])


class EvaluateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    evidence: EvidenceV1


class DecideRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(
        description="Model reference, e.g. mlflow:models:/fraud/7 or mlflow:models:/fraud@champion.",
        max_length=MODEL_REF_MAX,
        json_schema_extra={"pattern": MODEL_REF_PATTERN},  # stated; parse() checks it (its own message)
    )
    target: Target
    requested_by: str | None = Field(default=None, max_length=320, pattern=ONE_LINE)
    ticket: str | None = Field(
        default=None,
        max_length=TICKET_MAX,
        pattern=ONE_LINE,
        description="Change ticket, recorded as request.ticket in the evidence.",
    )
    run_url: str | None = Field(
        default=None,
        max_length=RUN_URL_MAX,
        pattern=RUN_URL,
        description="The CI run that asks (http(s) URL), recorded as request.run_url in the evidence.",
    )

    @field_validator("model")
    @classmethod
    def _parses(cls, value: str) -> str:
        parse(value)  # RefError is a ValueError: pydantic reports it as a 422 naming the field
        return value


class DecisionPage(BaseModel):
    decisions: list[Decision]
    next_cursor: str | None = Field(default=None, description="Pass as ?cursor= for the next (older) page.")


@router.post("/evaluate", response_model=Decision)
async def evaluate(
    body: EvaluateRequest,
    request: Request,
    explain: Annotated[bool, Query(description="Add `explanation`: why, rule by rule.")] = False,
) -> Response:
    """Decide on a complete evidence document the caller wrote: a what-if, recorded (before it is
    returned) with ``evidence_origin: supplied`` and never the model's release decision.

    ``request.caller`` is always the authenticated identity, whatever the document says; approvals
    are never ``verified`` because the document says so (policygate's own are added from the log).
    With ``?explain=true`` the answer also carries ``explanation`` (not recorded)."""
    # The hot path: no per-request dependencies beyond authentication (which set the principal),
    # OPA over the async client, the log through its group commit, the answer serialised once.
    service, caller = service_of(request), principal_of(request)
    decision = await service.evaluate_async(body.evidence, caller=caller.label)
    if explain:
        binary = request.app.state.settings.opa_binary
        doc = await run_in_threadpool(service.evidence_of, decision.decision_id)
        return await run_in_threadpool(explained, decision, doc, service.engine, binary)
    return answer(decision)


def answer(decision: Decision) -> Response:
    """A decision as ``POST /v1/evaluate`` answers it (here and on its fast path): serialised once."""
    return Response(decision.model_dump_json(), media_type="application/json")


@router.post("/decisions", response_model=Decision)
def decide(body: DecideRequest, service: Service, caller: Caller) -> Decision:
    """Collect evidence for the model from its platform, evaluate, record, answer."""
    who = requester(body.requested_by, caller)
    change = Change(ticket=body.ticket, run_url=body.run_url)
    return service.decide(
        parse(body.model), body.target, who or caller.id, caller=caller.label, change=change
    )


def _cursor(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        seq = int(base64.urlsafe_b64decode(value.encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        seq = -1
    if not 0 < seq < 2**63:  # also keeps an absurd number away from a BIGINT column
        raise HTTPException(status_code=422, detail="cursor: not a cursor returned by this API")
    return seq


def _iso_only(value: object) -> object:
    """Only RFC 3339 / ISO-8601 text: a bare number is not a time (pydantic would read epoch seconds)."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError("expected an ISO-8601 time such as 2026-11-27T00:00:00Z") from None
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only)]


def _instant(value: datetime) -> datetime:
    """A time without an offset is UTC (as the log stores it)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@router.get("/decisions", response_model=DecisionPage)
def list_decisions(
    service: Service,
    model: Annotated[
        str | None,
        Query(
            description="Model reference (version, not alias).",
            max_length=MODEL_REF_MAX,
            json_schema_extra={"pattern": MODEL_REF_PATTERN},
        ),
    ] = None,
    outcome: Literal["allow", "deny", "error"] | None = None,
    target: Literal["development", "staging", "production"] | None = None,
    since: IsoDateTime | None = None,
    until: IsoDateTime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
    rule: Annotated[
        str | None,
        Query(
            description="Only decisions with a finding of this rule id: deny reason, warning or dry-run.",
            json_schema_extra={"pattern": RULE_ID_INPUT_PATTERN},
        ),
    ] = None,
) -> DecisionPage:
    """Recorded decisions, newest first, with keyset pagination on the log's sequence number.

    Times without an offset are UTC; ``since`` is inclusive, ``until`` exclusive.
    """
    spellings = None
    if model is not None:
        try:
            parse(model)
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=f"model: {exc}") from None
        spellings = model_spellings(model)
    if since and until and _instant(since) >= _instant(until):
        raise HTTPException(status_code=422, detail="since: must be earlier than until")
    if rule is not None:
        try:
            rule = rule_id(rule)
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=f"rule: {exc}") from None
    records = service.log.query(
        rule=rule,
        model=spellings,
        outcome=outcome,
        target=target,
        since=since,
        until=until,
        before_seq=_cursor(cursor),
        limit=limit + 1,  # one more than asked tells whether another page exists
    )
    next_cursor = None
    if len(records) > limit:
        records = records[:limit]
        next_cursor = base64.urlsafe_b64encode(str(records[-1]["seq"]).encode()).decode()
    return DecisionPage(decisions=[r["decision"] for r in records], next_cursor=next_cursor)


@router.get("/decisions/{decision_id}", response_model=Decision)
def get_decision(decision_id: str, service: Service) -> dict[str, Any]:
    record = service.log.get(decision_id)
    if record is None or record.get("kind") != "decision":
        raise HTTPException(status_code=404, detail=f"no decision with id {decision_id!r}")
    decision: dict[str, Any] = record["decision"]
    return decision
