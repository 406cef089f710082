"""The console's model pages: the list of governed models (filtered, paged), with the models in use
that no release decision covers (from the latest audit run), and one model's record with what is true
now (approvals' state, senders, owner changes, alias moves, where the audit found it in use)."""

from __future__ import annotations

from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from policygate.api.console import lineage
from policygate.api.console.in_use import bypassed
from policygate.api.console.model_list import Filters, model_page
from policygate.api.console.pages import error_page, page
from policygate.api.deps import Service
from policygate.audit.now import record_now
from policygate.decisions.aliases import alias_of, for_reading, source_lookup
from policygate.decisions.log import DecisionLog

router = APIRouter(prefix="/ui", include_in_schema=False)

OUTCOMES, TARGETS, PLATFORMS = (
    ("allow", "deny", "error"),
    ("development", "staging", "production"),
    (
        "mlflow",
        "azureml",
    ),
)


@router.get("")
def models(
    request: Request,
    service: Service,
    q: Annotated[str, Query(max_length=200)] = "",
    platform: Annotated[str, Query(max_length=16)] = "",
    target: Annotated[str, Query(max_length=32)] = "",
    outcome: Annotated[str, Query(max_length=8)] = "",
    owner: Annotated[str, Query(max_length=200)] = "",
    after: Annotated[str | None, Query(max_length=1024)] = None,
) -> Response:
    if alias_of(q.strip()) is not None:  # an alias names one version: its page resolves it and says how
        return RedirectResponse(f"/ui/models/{quote(q.strip(), safe='')}", status_code=303)
    filters = Filters(
        search=q.strip(),
        platform=platform if platform in PLATFORMS else "",
        target=target if target in TARGETS else "",
        outcome=outcome if outcome in OUTCOMES else "",
        owner=owner.strip(),
    )
    listing = model_page(service.log, filters, after=after or None)
    findings = _open_findings(service.log)
    return page(
        request,
        "models.html",
        listing=listing,
        filters=filters,
        findings=findings,
        targets=TARGETS,
        outcomes=OUTCOMES,
        platforms=PLATFORMS,
        next_url=_next_url(request, listing.after),
        in_use=bypassed(service.log, filters) if after is None else None,
    )


def _next_url(request: Request, after: str | None) -> str | None:
    if after is None:
        return None
    params = {k: v for k, v in request.query_params.items() if k != "after" and v}
    params["after"] = after
    return "/ui?" + "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in params.items())


def _open_findings(log: DecisionLog) -> dict[str, list[dict[str, Any]]]:
    """The last audit run's findings by model (empty when no audit ran)."""
    from policygate.audit.run import latest_run

    run = latest_run(log)
    found: dict[str, list[dict[str, Any]]] = {}
    for finding in run.findings if run else []:
        found.setdefault(finding.model, []).append(finding.model_dump())
    return found


@router.get("/models/{ref:path}")
def model(request: Request, service: Service, ref: str) -> Response:
    if not ref.strip() or len(ref) > 1024:
        return error_page(request, 422, "expected a model reference of 1 to 1024 characters")
    version_ref, alias = for_reading(service.log, ref, source_lookup(service.collector.sources.get("mlflow")))
    record = record_now(service.log, version_ref, history=100)
    if record is None:
        return error_page(
            request, 404, f"no decision recorded for model {ref[:200]!r}, nor seen by the latest audit run"
        )
    evidence = (record.get("latest_evidence") or {}).get("evidence") or {}
    latest = record.get("latest_decisions") or {}
    title = f"Lineage of {record['model']}"
    picture = lineage.svg(lineage.graph(evidence, latest, _links(request, evidence)), title)
    timeline: dict[str, list[dict[str, Any]]] = {}
    for entry in record.get("history") or []:
        stage = (entry.get("target") or {}).get("stage") or "unknown"
        timeline.setdefault(stage, []).append(entry)
    return page(
        request,
        "model.html",
        record=record,
        alias=alias,
        picture=picture,
        timeline=timeline,
        waivers=_waivers_for(service.log, record["model"]),
        findings=_open_findings(service.log).get(record["model"], []),
    )


def _links(request: Request, evidence: dict[str, Any]) -> lineage.Links:
    settings = request.app.state.settings
    workspace = None
    for source in (evidence.get("collection") or {}).get("sources") or []:
        endpoint = str(source.get("endpoint") or "")
        if source.get("platform") == "azureml" and "/workspaces/" in endpoint:
            workspace = "/subscriptions/" + endpoint.split("/subscriptions/", 1)[-1]
    return lineage.Links(mlflow_ui=settings.mlflow_uri, azure_workspace=workspace)


def _waivers_for(log: DecisionLog, ref: str) -> list[Any]:
    from policygate.policy import waivers

    state = waivers.load_state(log)
    views = state.views(datetime.now(UTC), include_inactive=True)
    return [w for w in views if w.model == ref or fnmatchcase(ref, w.model)]
