"""The console's policy pages: the rules OPA holds with the waivers, and a candidate policy replayed."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from policygate.api.console.pages import error_page, page
from policygate.api.deps import Service
from policygate.engine.errors import EngineError

router = APIRouter(prefix="/ui", include_in_schema=False)


_catalogues: dict[str, Any] = {}  # policy revision -> its catalogue (rules change only with it)


def cached_catalogue(engine: Any) -> Any:
    """The rule catalogue of the revision OPA holds, read from OPA once per revision."""
    from policygate.policy.authoring import catalogue

    revision = engine.policy_revision
    if revision not in _catalogues:
        _catalogues.clear()
        _catalogues[revision] = catalogue(engine)
    return _catalogues[revision]


@router.get("/policy")
def policy(request: Request, service: Service) -> Response:
    from policygate.policy import waivers

    problem, rules, revision = None, [], None
    if service.engine is None:
        problem = "OPA is not available"
    else:
        try:
            found = cached_catalogue(service.engine)
            rules, revision = found.rules, found.policy_revision
        except EngineError as exc:
            problem = f"OPA: {exc.message}"
    views = waivers.load_state(service.log).views(datetime.now(UTC), include_inactive=True)
    candidate = request.app.state.settings.console_candidate_policy
    return page(
        request,
        "policy.html",
        rules=rules,
        revision=revision,
        problem=problem,
        waivers=views,
        candidate=str(candidate) if candidate else None,
    )


_replaying = threading.Lock()


@router.get("/policy/replay")
def policy_replay(
    request: Request, service: Service, since: Annotated[str, Query(max_length=32)] = "7d"
) -> Response:
    """The candidate policy directory given to ``serve --candidate-policy`` replayed over the recorded
    decisions in its own OPA (nothing is written); one replay at a time."""
    from policygate.output import load_report
    from policygate.policy.load import load_policy
    from policygate.policy.replay import replay
    from policygate.policy.timespec import TimeSpecError, instant_or_duration

    settings = request.app.state.settings
    candidate = settings.console_candidate_policy
    if candidate is None:
        return error_page(request, 404, "no candidate policy: start serve with --candidate-policy DIR")
    try:
        start = instant_or_duration(since, datetime.now(UTC), future=False)
    except TimeSpecError as exc:
        return error_page(request, 422, f"since: {exc}")
    if not _replaying.acquire(blocking=False):
        return error_page(request, 429, "a replay is running: try again when it is done")
    try:
        loaded, engine = load_policy(settings.opa_binary, candidate, None, timeout_s=settings.opa_timeout_s)
        if engine is None:
            return page(request, "replay.html", report=None, refused=load_report.render(loaded), since=since)
        with engine as opa:
            report = replay(service.log, opa, candidate=str(candidate), since=start)
        return page(request, "replay.html", report=report, refused=None, since=since)
    except EngineError as exc:
        return error_page(request, 503, f"candidate policy: {exc.message}")
    finally:
        _replaying.release()
