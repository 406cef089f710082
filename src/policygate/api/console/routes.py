"""The console's pages under ``/ui``: models, a model, a decision, the policy; and sign-in.

Read-only: every page is a GET that reads the log (and OPA, for rule titles). The pages sit behind
the API's own authentication (policygate.api.auth): the ``read`` scope, from an ``Authorization``
header or from the session cookie that sign-in sets, which holds the caller's own token (HttpOnly,
SameSite=Strict, Secure unless served over plain http on loopback) and is checked on every request
like a bearer token, so a revoked token signs its sessions out at once.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from policygate.api.auth import SESSION_COOKIE, principal_of
from policygate.api.console import lineage
from policygate.api.console.model_list import Filters, model_page
from policygate.api.console.origin import cross_site
from policygate.api.deps import Service
from policygate.auth.authenticator import Authenticator
from policygate.decisions.aliases import alias_of, for_reading, source_lookup
from policygate.decisions.chain import chain_hash
from policygate.decisions.decision import Decision
from policygate.decisions.log import DecisionLog
from policygate.decisions.record import governed_record
from policygate.decisions.schema import Record
from policygate.engine.errors import EngineError

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["json"] = lambda v: json.dumps(v, indent=2, sort_keys=True, default=str)
templates.env.filters["q"] = lambda v: quote(str(v), safe="")  # a path segment: model refs have slashes
router = APIRouter(prefix="/ui", include_in_schema=False)

SESSION_S = 8 * 3600
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
OUTCOMES, TARGETS, PLATFORMS = (
    ("allow", "deny", "error"),
    ("development", "staging", "production"),
    (
        "mlflow",
        "azureml",
    ),
)
CHAIN_FRESH_S = 300.0


def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    principal = principal_of(request)
    response = templates.TemplateResponse(
        request,
        name,
        {"principal": principal, "signed_in": principal.kind != "anonymous", **context},
        status_code=status,
    )
    response.headers.update(SECURITY_HEADERS)
    return response


def error_page(request: Request, status: int, message: str) -> Response:
    """Errors on /ui are pages too; a missing or refused session goes to sign-in."""
    if status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse(f"/ui/sign-in?next={quote(target, safe='')}", status_code=303)
        response.headers.update(SECURITY_HEADERS)
        return response
    return page(request, "error.html", status=status, status_code=status, message=message)


# -- models -------------------------------------------------------------------------------------


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


# -- one model ----------------------------------------------------------------------------------


@router.get("/models/{ref:path}")
def model(request: Request, service: Service, ref: str) -> Response:
    if not ref.strip() or len(ref) > 1024:
        return error_page(request, 422, "expected a model reference of 1 to 1024 characters")
    version_ref, alias = for_reading(service.log, ref, source_lookup(service.collector.sources.get("mlflow")))
    record = governed_record(service.log, version_ref, history=100)
    if record is None:
        return error_page(request, 404, f"no decision recorded for model {ref[:200]!r}")
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


# -- one decision -------------------------------------------------------------------------------


@dataclass
class ChainCheck:
    seq: int
    prev_hash: str
    record_hash: str
    hash_ok: bool  # the record's hash is the hash of its body and the previous hash
    links_ok: bool  # the previous record's hash is the one this record names
    verified_upto: int | None  # the whole chain verified from the genesis up to here or further
    verified_at: str | None
    problem: str | None
    busy: str | None = None  # not checked now, and why


class ChainProgress:
    """How far the whole chain was verified, and when: a decision page asks only for the rest."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seq, self.hash, self.at = 0, "", 0.0

    def verify_upto(self, log: DecisionLog, seq: int) -> tuple[bool | None, str | None]:
        """(True, None) verified; (False, problem) broken; (None, why) not checked now: one walk at a
        time, and a page never waits for another's (a million records take a while)."""
        if not self.lock.acquire(blocking=False):
            return None, "another verification of the chain is running: try again in a moment"
        try:
            return self._verify_upto(log, seq)
        finally:
            self.lock.release()

    def _verify_upto(self, log: DecisionLog, seq: int) -> tuple[bool, str | None]:
        fresh = time.monotonic() - self.at < CHAIN_FRESH_S
        if fresh and self.seq >= seq:
            return True, None
        after = (self.seq, self.hash) if fresh and self.seq else None
        result = log.verify(upto=seq, after=after)
        if not result.ok:
            self.seq, self.hash, self.at = 0, "", 0.0
            return False, result.problem
        self.seq, self.hash = seq, log.hash_at(seq) or ""
        self.at = self.at if after else time.monotonic()  # freshness counts from a full walk
        return True, None


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
    check = await run_in_threadpool(_chain_check, service.log, row, progress, verify)
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


_catalogues: dict[str, Any] = {}  # policy revision -> its catalogue (rules change only with it)


def cached_catalogue(engine: Any) -> Any:
    """The rule catalogue of the revision OPA holds, read from OPA once per revision."""
    from policygate.policy.authoring import catalogue

    revision = engine.policy_revision
    if revision not in _catalogues:
        _catalogues.clear()
        _catalogues[revision] = catalogue(engine)
    return _catalogues[revision]


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


def _chain_check(log: DecisionLog, row: Any, progress: ChainProgress, verify: bool) -> ChainCheck:
    previous = log.hash_at(row.seq - 1) if row.seq > 1 else None
    links_ok = row.seq == 1 or previous == row.prev_hash
    check = ChainCheck(
        seq=row.seq,
        prev_hash=row.prev_hash,
        record_hash=row.record_hash,
        hash_ok=chain_hash(row.prev_hash, row.body) == row.record_hash,
        links_ok=links_ok,
        verified_upto=None,
        verified_at=None,
        problem=None,
    )
    # read without the lock (a walk may hold it for a while); a value a moment old is harmless
    if time.monotonic() - progress.at < CHAIN_FRESH_S and progress.seq >= row.seq:
        check.verified_upto = progress.seq
    if verify and check.verified_upto is None:
        ok, problem = progress.verify_upto(log, row.seq)
        if ok:
            check.verified_upto = progress.seq
        elif ok is False:
            check.problem = problem
        else:
            check.busy = problem
    if check.verified_upto is not None:
        check.verified_at = "within the last 5 minutes"
    return check


# -- policy -------------------------------------------------------------------------------------


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


# -- sign-in ------------------------------------------------------------------------------------


@router.get("/sign-in")
def sign_in_form(request: Request, next: Annotated[str, Query(max_length=2048)] = "/ui") -> Response:
    return page(request, "sign_in.html", next=_safe_next(next), problem=None)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    refused = cross_site(request)
    if refused is not None:  # login CSRF: another site signing the browser in with its own token
        return page(
            request, "sign_in.html", 403, next="/ui", problem=f"cross-site sign-in refused ({refused})"
        )
    try:
        form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=4)
    except ValueError:
        return page(request, "sign_in.html", 400, next="/ui", problem="send the form's two fields only")
    token = (form.get("token") or [""])[0].strip()
    target = _safe_next((form.get("next") or ["/ui"])[0])
    auth: Authenticator = request.app.state.auth
    address = request.client.host if request.client else "-"
    if auth.failures.peek(address):
        return page(
            request, "sign_in.html", 429, next=target, problem="too many failed sign-ins: wait a minute"
        )
    found = await run_in_threadpool(auth.verify, token) if token and len(token) <= 8192 else None
    if found is None:
        auth.failures.allow(address)
        return page(request, "sign_in.html", 401, next=target, problem="invalid, expired or revoked token")
    if not found.may("read"):
        return page(request, "sign_in.html", 403, next=target, problem="this token lacks the 'read' scope")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_S,
        path="/ui",
        httponly=True,
        secure=not _plain_loopback(request),
        samesite="strict",
    )
    response.headers.update(SECURITY_HEADERS)
    return response


@router.post("/sign-out")
def sign_out(request: Request) -> Response:
    refused = cross_site(request)
    if refused is not None:
        return error_page(request, 403, f"cross-site sign-out refused ({refused})")
    response = RedirectResponse("/ui/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/ui", httponly=True, samesite="strict")
    response.headers.update(SECURITY_HEADERS)
    return response


def _safe_next(target: str) -> str:
    """Only a console page of this origin (never //host or a scheme): no open redirect."""
    if target.startswith("/ui") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui"


def _plain_loopback(request: Request) -> bool:
    if request.url.scheme == "https":
        return False
    try:
        return ipaddress.ip_address(request.url.hostname or "").is_loopback
    except ValueError:
        return request.url.hostname == "localhost"
