"""The governed record of one model version: owner, lineage, policy and decisions, from the log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query

from policygate.api.deps import Service
from policygate.decisions.record import governed_record
from policygate.refs import RefError, parse

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models/{ref:path}/record")
def model_record(
    service: Service,
    ref: Annotated[
        str,
        Path(
            description="Model reference as recorded, slashes and colons included, "
            "e.g. /v1/models/mlflow:models:/fraud/7/record (URL-encoding also works).",
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=500, description="How many recent decisions to include.")] = 50,
) -> dict[str, Any]:
    """Who owns this model, which policy decided, what was decided, on which lineage.

    Assembled from recorded decisions only; the full history pages through
    ``GET /v1/decisions?model=REF``.
    """
    if not ref.strip() or len(ref) > 1024:
        raise HTTPException(status_code=422, detail="ref: expected a model reference of 1 to 1024 characters")
    record = governed_record(service.log, ref, history=limit)
    if record is not None:
        return record
    try:
        parse(ref)
    except RefError as exc:  # nothing recorded under that spelling and it is no reference at all
        raise HTTPException(status_code=422, detail=f"ref: {exc}") from None
    raise HTTPException(status_code=404, detail=f"no decision recorded for model {ref!r}")
