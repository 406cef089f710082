"""Evaluate evidence and read recorded decisions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict

from policygate.api.deps import Service
from policygate.decisions.model import Decision
from policygate.evidence import EvidenceV1

router = APIRouter(prefix="/v1", tags=["decisions"])


class EvaluateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    evidence: EvidenceV1


@router.post("/evaluate", response_model=Decision)
def evaluate(body: EvaluateRequest, service: Service) -> Decision:
    """Decide on a complete evidence document; the decision is recorded before it is returned."""
    return service.evaluate(body.evidence)


@router.get("/decisions/{decision_id}")
def get_decision(decision_id: str, service: Service) -> dict[str, Any]:
    record = service.log.get(decision_id)
    if record is None or record.get("kind") != "decision":
        raise HTTPException(status_code=404, detail=f"no decision with id {decision_id!r}")
    decision: dict[str, Any] = record["decision"]
    return decision
