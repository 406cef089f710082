"""The governed record of one model version: owner, lineage, policy and decisions, from the log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response

from policygate.api.deps import Service
from policygate.audit.now import record_now
from policygate.decisions.aliases import for_reading, source_lookup
from policygate.refs import MODEL_REF_MAX, MODEL_REF_PATTERN, RefError, parse

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models/{ref:path}/record")
def model_record(
    service: Service,
    ref: Annotated[
        str,
        Path(
            description="Model reference as recorded, slashes and colons included, "
            "e.g. /v1/models/mlflow:models:/fraud/7/record (URL-encoding also works).",
            max_length=MODEL_REF_MAX,
            json_schema_extra={"pattern": MODEL_REF_PATTERN},  # stated; parse() checks it (its own message)
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=500, description="How many recent decisions to include.")] = 50,
) -> dict[str, Any]:
    """Who owns this model, which policy decided, what was decided, on which lineage.

    Assembled from recorded decisions only; the full history pages through
    ``GET /v1/decisions?model=REF``. An alias (``mlflow:models:/NAME@ALIAS``) gives the record of
    the version it points at, resolved through MLflow when it answers, else from the aliases in the
    recorded evidence; ``alias`` says which.

    What is true now sits beside what was decided: ``approvals_now`` (each approval's state now:
    standing, withdrawn, rejected or unverified), ``sent_by`` on each decision, ``owner_since_release``,
    ``alias_moves`` (those policygate saw: MLflow keeps no alias history) and ``in_use`` (where the
    latest audit run found it). A model in use with no decision (a bypass) answers 200 with an empty
    history and the audit's view; 404 only when policygate knows nothing of it.
    """
    if not ref.strip() or len(ref) > 1024:
        raise HTTPException(status_code=422, detail="ref: expected a model reference of 1 to 1024 characters")
    version_ref, resolved = for_reading(
        service.log, ref, source_lookup(service.collector.sources.get("mlflow"))
    )
    record = record_now(service.log, version_ref, history=limit)
    if record is not None:
        return record if resolved is None else {"alias": resolved.as_dict(), **record}
    try:
        parse(ref)
    except RefError as exc:  # nothing recorded under that spelling and it is no reference at all
        raise HTTPException(status_code=422, detail=f"ref: {exc}") from None
    raise HTTPException(
        status_code=404,
        detail=f"no decision recorded for model {ref!r} and the latest audit run did not see it",
    )


@router.get(
    "/models/{ref:path}/pack",
    response_class=Response,
    responses={200: {"content": {"application/gzip": {}}}, 404: {}, 409: {}},
)
def model_pack(
    request: Request,
    service: Service,
    ref: Annotated[
        str,
        Path(
            description="Model version reference, e.g. /v1/models/mlflow:models:/fraud/7/pack.",
            max_length=MODEL_REF_MAX,
            json_schema_extra={"pattern": MODEL_REF_PATTERN},
        ),
    ],
) -> Response:
    """The evidence pack of one model version (tar.gz), as ``policygate log pack`` writes it: every
    record about it, its evidence, the policy that decided, a signed checkpoint and the chain segment
    proving each record; ``policygate log pack verify FILE --key PUB`` checks it offline. 409 when the
    service has no checkpoint to prove the records in (POLICYGATE_CHECKPOINT_KEY or _DIR)."""
    from policygate.audit.pack import NothingRecorded, PackError
    from policygate.audit.pack_build import build_configured

    try:
        version = str(parse(ref))
    except RefError as exc:
        raise HTTPException(status_code=422, detail=f"ref: {exc}") from None
    settings = request.app.state.settings
    try:
        data = build_configured(service.log, version, settings.checkpoint_key, settings.checkpoint_dir)
    except NothingRecorded as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except PackError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    name = version.replace("/", "_").replace(":", "_")
    return Response(
        data,
        media_type="application/gzip",
        headers={"Content-Disposition": f'attachment; filename="{name}.pack.tar.gz"'},
    )
