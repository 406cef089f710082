"""Owner reviews and retirement of a model version, recorded as the authenticated caller.

``POST /v1/models/{ref}/reviews`` (the owner only), ``POST /v1/models/{ref}/retirement`` (the owner or
a caller with ``approve``) and ``DELETE /v1/models/{ref}/retirement`` with a JSON reason: un-retiring
is a new recorded event, as withdrawing an approval is a ``DELETE`` that records one."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field

from policygate.api.auth import Caller
from policygate.api.deps import RuntimeDep, Service
from policygate.auth.principal import Principal
from policygate.decisions.lifecycle import (
    LifecycleConflict,
    LifecycleRecord,
    lifecycle_events,
    lifecycle_of,
    owner_problem,
    record_lifecycle,
)
from policygate.decisions.service import DecisionService
from policygate.errors import InputError
from policygate.evidence import ONE_LINE, Lifecycle, LifecycleKind, Target
from policygate.evidence import Request as EvidenceRequest
from policygate.refs import MODEL_REF_MAX, MODEL_VERSION_PATTERN, ModelRef, RefError, parse
from policygate.runtime import Runtime
from policygate.sources.azureml.source import AzureMLSource
from policygate.sources.base import SourceError
from policygate.sources.directory import DirectoryError
from policygate.timeutil import now_iso

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["lifecycle"])

RefPath = Annotated[
    str,
    Path(
        description="Model version reference, slashes and colons included, e.g. "
        "/v1/models/mlflow:models:/fraud/7/reviews (a version, not an alias).",
        max_length=MODEL_REF_MAX,
        json_schema_extra={"pattern": MODEL_VERSION_PATTERN},  # stated; parse() checks it (its own message)
    ),
]


# one line with at least one character that is not a space (a blank reason is no reason)
NON_BLANK = r"^[^\x00-\x1f\x7f]*[^\x00-\x20\x7f][^\x00-\x1f\x7f]*$"
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "The version is already retired (retire) or not retired (unretire)"}
}


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(
        default=None, max_length=2000, pattern=ONE_LINE, description="What the owner confirms or notes."
    )


class ReasonRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000, pattern=NON_BLANK, description="Why.")


class LifecycleAnswer(BaseModel):
    event: LifecycleRecord
    lifecycle: Lifecycle = Field(description="The version's lifecycle after the event (evidence shape).")
    written_back: bool = Field(
        description="Whether the platform was told (MLflow tag policygate.lifecycle); reviews: false."
    )


@router.post("/models/{ref:path}/reviews", status_code=201, response_model=LifecycleAnswer)
def review(
    ref: RefPath, service: Service, runtime: RuntimeDep, caller: Caller, body: ReviewRequest | None = None
) -> LifecycleAnswer:
    """The owner re-confirms they answer for the model version, and that its use case and risk tier
    still hold (LIF-002). Only the owner, as the directory resolves the caller, may (403 otherwise)."""
    return _record(service, runtime, caller, ref, "review", (body or ReviewRequest()).note)


@router.post(
    "/models/{ref:path}/retirement", status_code=201, response_model=LifecycleAnswer, responses=CONFLICT
)
def retire(
    ref: RefPath, body: ReasonRequest, service: Service, runtime: RuntimeDep, caller: Caller
) -> LifecycleAnswer:
    """Retire the version from now on (LIF-001 denies it everywhere): the owner or a caller with
    ``approve``. 409 when it is retired already."""
    return _record(service, runtime, caller, ref, "retire", body.reason)


@router.delete("/models/{ref:path}/retirement", response_model=LifecycleAnswer, responses=CONFLICT)
def unretire(
    ref: RefPath,
    service: Service,
    runtime: RuntimeDep,
    caller: Caller,
    body: Annotated[ReasonRequest, Body()],
) -> LifecycleAnswer:
    """Un-retire the version: a new recorded event with its reason, never a silent undo. The owner or
    a caller with ``approve``; 409 when it is not retired."""
    return _record(service, runtime, caller, ref, "unretire", body.reason)


def _record(
    service: DecisionService,
    runtime: Runtime,
    caller: Principal,
    raw: str,
    kind: LifecycleKind,
    text: str | None,
) -> LifecycleAnswer:
    if caller.kind == "anonymous":
        raise HTTPException(status_code=401, detail=f"a {kind} needs an authenticated caller: send a token")
    ref = _version(raw)
    problem = _not_allowed(service, caller, ref, kind)
    if problem is not None:
        raise HTTPException(status_code=403, detail=problem)
    try:
        event = record_lifecycle(service.log, ref, kind, caller.id, caller.label, text)
    except LifecycleConflict as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    except InputError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    return LifecycleAnswer(
        event=event,
        lifecycle=lifecycle_of(lifecycle_events(service.log, str(ref))),
        written_back=kind != "review" and _written_back(runtime, ref, kind),
    )


def _version(raw: str) -> ModelRef:
    try:
        ref = parse(raw)
    except RefError as exc:
        raise HTTPException(status_code=422, detail=f"ref: {exc}") from None
    if ref.version is None:
        raise HTTPException(status_code=422, detail="ref: name a model version, not an alias: aliases move")
    return ref


def _not_allowed(
    service: DecisionService, caller: Principal, ref: ModelRef, kind: LifecycleKind
) -> str | None:
    """Why the caller may not record this event (None: they may), from the version's evidence as
    collected now; a version its platform does not know is 404, a platform or directory that cannot
    answer 503 (nothing is recorded on a guess)."""
    if kind != "review" and caller.may("approve"):
        _collect(service, ref)  # the version must exist all the same
        return None
    owner = _collect(service, ref)
    try:
        problem = owner_problem(caller.id, owner, service.collector.directory)
    except DirectoryError as exc:
        raise HTTPException(status_code=503, detail=f"cannot resolve the caller: {exc}") from None
    if problem is None:
        return None
    who = "the owner" if kind == "review" else "the owner or a caller with the 'approve' scope"
    return f"only {who} may {kind} {ref}: {problem}"


def _collect(service: DecisionService, ref: ModelRef) -> str | None:
    """The version's owner as its evidence says (the merged platforms')."""
    request = EvidenceRequest(target=Target(stage="production"), requested_at=now_iso())
    try:
        evidence = service.collector.collect(ref, request)
    except SourceError as exc:
        if exc.not_found:
            raise HTTPException(status_code=404, detail=f"{ref} does not exist: {exc.message}") from None
        raise HTTPException(status_code=503, detail=f"cannot read {ref}: {exc}") from None
    return evidence.ownership.owner


def _written_back(runtime: Runtime, ref: ModelRef, kind: LifecycleKind) -> bool:
    """MLflow: tag ``policygate.lifecycle`` (and on retire, with POLICYGATE_RETIRE_REMOVE_ALIASES, the
    version's aliases removed). Azure ML: the version archived (retire) or restored (unretire).
    Failures are logged: the event is recorded already."""
    settings = runtime.settings
    if ref.platform == "azureml":
        return _azure_archived(runtime, ref, kind == "retire")
    if ref.platform != "mlflow" or not settings.mlflow_uri:
        return False
    from policygate.webhooks.writeback import MlflowWriteBack

    writer = runtime.writeback or MlflowWriteBack(settings.mlflow_uri, attempts=2)
    state = "retired" if kind == "retire" else "active"
    remove = kind == "retire" and settings.retire_remove_aliases
    return writer.lifecycle(ref.name, str(ref.version), state, remove)


def _azure_archived(runtime: Runtime, ref: ModelRef, archived: bool) -> bool:
    source = runtime.service.collector.sources.get("azureml")
    if not isinstance(source, AzureMLSource):
        return False
    try:
        source.set_archived(ref, archived)
    except SourceError as exc:
        log.warning("lifecycle write-back to Azure ML failed for %s: %s", ref, exc)
        return False
    return True
