"""The policy catalogue: the revision OPA holds and every rule with its mode."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import JSONResponse

from policygate.api.deps import Service
from policygate.decisions.decision import Decision
from policygate.engine.catalogue import Catalogue
from policygate.engine.errors import EngineError
from policygate.engine.opa import OpaEngine
from policygate.policy.authoring import catalogue
from policygate.policy.explain import explain
from policygate.policy.revisions import REVISION, NotKept, RevisionError, kept
from policygate.runtime.null_engine import NullEngine

router = APIRouter(prefix="/v1", tags=["policy"])


@router.get("/policy", response_model=Catalogue)
def get_policy(service: Service) -> dict[str, Any]:
    """The policy revision OPA holds and every annotated rule: id, title, severity, mode, controls."""
    engine = service.engine
    if engine is None or isinstance(engine, NullEngine):  # said as before: not the start-up error
        raise HTTPException(status_code=503, detail="OPA is not available")
    try:
        return catalogue(engine).to_dict()
    except EngineError as exc:
        raise HTTPException(status_code=503, detail=f"OPA: {exc.message}") from None


@router.get("/policy/revisions/{revision}", responses={404: {}, 409: {}, 422: {}})
def policy_revision(
    service: Service,
    revision: Annotated[str, Path(json_schema_extra={"pattern": "^" + REVISION.pattern + "$"})],
) -> dict[str, Any]:
    """The policy files (modules and data) that decided under ``revision``, exactly as the log keeps
    them; their digest recomputes to it (409 when it does not: altered)."""
    if not REVISION.fullmatch(revision):
        raise HTTPException(
            status_code=422, detail="revision: not a policy revision (sha256: and 64 hex digits)"
        )
    try:
        files = kept(service.log, revision)
    except RevisionError as exc:
        raise HTTPException(status_code=404 if isinstance(exc, NotKept) else 409, detail=str(exc)) from None
    return {"revision": revision, "files": files}


def explained(decision: Decision, doc: dict[str, Any], engine: OpaEngine | None, binary: str) -> JSONResponse:
    """The decision as recorded plus ``explanation`` of it on the evidence it was made on (``doc``,
    as recorded; computed after recording, never stored)."""
    why = explain(decision, doc, engine, binary)
    return JSONResponse({**decision.model_dump(mode="json"), "explanation": why.model_dump(mode="json")})
