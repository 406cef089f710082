"""The policy catalogue: the revision OPA holds and every rule with its mode."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse

from policygate.api.deps import Service
from policygate.decisions.model import Decision
from policygate.engine.catalogue import Catalogue
from policygate.engine.opa import EngineError, OpaEngine
from policygate.policy.authoring import catalogue
from policygate.policy.explain import explain

router = APIRouter(prefix="/v1", tags=["policy"])


@router.get("/policy", response_model=Catalogue)
def get_policy(service: Service) -> dict[str, Any]:
    """The policy revision OPA holds and every annotated rule: id, title, severity, mode, controls."""
    if service.engine is None:
        raise HTTPException(status_code=503, detail="OPA is not available")
    try:
        return catalogue(service.engine).to_dict()
    except EngineError as exc:
        raise HTTPException(status_code=503, detail=f"OPA: {exc.message}") from None


def explained(decision: Decision, doc: dict[str, Any], engine: OpaEngine | None, binary: str) -> JSONResponse:
    """The decision as recorded plus ``explanation`` of it on the evidence it was made on (``doc``,
    as recorded; computed after recording, never stored)."""
    why = explain(decision, doc, engine, binary)
    return JSONResponse({**decision.model_dump(mode="json"), "explanation": why.model_dump(mode="json")})
