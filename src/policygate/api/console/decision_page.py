"""The console's page of one decision: what was decided and why, the evidence, and its place in the chain."""

from __future__ import annotations

import contextlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import select

from policygate.api.console.chain import ChainProgress, chain_check
from policygate.api.console.pages import error_page, page
from policygate.api.console.policy_pages import cached_catalogue
from policygate.api.deps import Service
from policygate.decisions.decision import Decision
from policygate.decisions.log import DecisionLog
from policygate.decisions.schema import Record
from policygate.engine.errors import EngineError

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/decisions/{decision_id}")
async def decision(
    request: Request, service: Service, decision_id: str, verify: Annotated[bool, Query()] = False
) -> Response:
    if len(decision_id) > 80:
        return error_page(request, 422, "decision id: at most 80 characters")
    found = await run_in_threadpool(_decision_row, service.log, decision_id)
    if found is None:
        return error_page(request, 404, f"no decision {decision_id[:80]!r} recorded")
    row, body = found
    if body.get("kind") != "decision" or "decision" not in body:
        return error_page(request, 404, f"{decision_id[:80]!r} is a record of another kind")
    recorded = Decision.model_validate(body["decision"])
    evidence = body.get("evidence") or {}
    explanation, controls = await run_in_threadpool(_explained, service, recorded, evidence)
    progress: ChainProgress = request.app.state.console_chain
    check = await run_in_threadpool(chain_check, service.log, row, progress, verify)
    return page(
        request,
        "decision.html",
        decision=recorded,
        body=body,
        evidence=evidence,
        explanation=explanation,
        controls=controls,
        chain=check,
    )


def _decision_row(log: DecisionLog, decision_id: str) -> tuple[Any, dict[str, Any]] | None:
    stmt = select(Record.seq, Record.body, Record.prev_hash, Record.record_hash).where(
        Record.decision_id == decision_id
    )
    with log.engine.connect() as conn:
        row = conn.execute(stmt).first()
    return None if row is None else (row, json.loads(row.body))


def _explained(
    service: Any, recorded: Decision, evidence: dict[str, Any]
) -> tuple[Any, dict[str, list[str]]]:
    """The --explain content without asking OPA again (titles, descriptions and controls from the
    cached catalogue; the evidence values from the document as recorded)."""
    from policygate.policy.explain import explain

    rules: dict[str, Any] = {}
    if service.engine is not None:
        with contextlib.suppress(EngineError):
            rules = {r.id: r for r in cached_catalogue(service.engine).rules}
    explanation = explain(recorded, evidence, None, None)
    for reason in explanation.reasons:
        rule = rules.get(reason.id)
        if rule is not None:
            reason.title = reason.title or rule.title
            reason.description = reason.description or " ".join(rule.description.split()) or None
    return explanation, {rule_id: rule.controls for rule_id, rule in rules.items()}
