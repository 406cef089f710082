"""Every route needs a token with the right scope, except health, readiness and the signed webhooks.

The scope a route needs is derived from its method and path, with ``admin`` as
the default, so a new route is closed until someone decides otherwise.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from policygate.auth.authenticator import Authenticator
from policygate.auth.principal import ANONYMOUS, Principal

PUBLIC = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
# the console's sign-in and sign-out (they only set or clear the session cookie; policygate.api.console)
CONSOLE_PUBLIC = {"/ui/sign-in", "/ui/sign-out"}
CONSOLE = "/ui"
SESSION_COOKIE = "policygate_session"  # the console's: the caller's own token, HttpOnly, SameSite=Strict
SIGNED = ("/v1/webhooks/",)  # authenticated by signature / shared secret in the route itself
DECIDE = {("POST", "/v1/evaluate"), ("POST", "/v1/decisions")}
APPROVE = {("POST", "/v1/approvals"), ("DELETE", "/v1/approvals/{approval_id}")}
# owner reviews and retirement: a caller who may decide or approve; the route then checks that the
# caller is the owner (or, to retire and un-retire, holds ``approve``): docs/identity.md
LIFECYCLE = {
    (method, f"/v1/models/{{{ref}}}/{what}")
    for ref in ("ref", "ref:path")  # as routed, as OpenAPI spells it
    for method, what in (("POST", "reviews"), ("POST", "retirement"), ("DELETE", "retirement"))
}
DECIDE_OR_APPROVE = "decide|approve"
AUDIT = {("POST", "/v1/audit/runs")}

_bearer = HTTPBearer(auto_error=False, description="policygate API token (pgt_...) or an OIDC access token")


def required_scope(method: str, path: str) -> str | None:
    if path in PUBLIC or path in CONSOLE_PUBLIC or path.startswith(SIGNED):
        return None
    if (method, path) in DECIDE:
        return "decide"
    if (method, path) in APPROVE:
        return "approve"
    if (method, path) in LIFECYCLE:
        return DECIDE_OR_APPROVE
    if (method, path) in AUDIT:
        return "audit"
    if method in ("GET", "HEAD"):
        return "read"
    return "admin"


def _unauthorised(message: str) -> HTTPException:
    return HTTPException(status_code=401, detail=message, headers={"WWW-Authenticate": "Bearer"})


def _count_refusal(request: Request, reason: str) -> None:
    request.app.state.service.metrics.rate_limited.labels(reason).inc()


def _too_many(message: str, wait: float) -> HTTPException:
    return HTTPException(status_code=429, detail=message, headers={"Retry-After": str(int(wait) + 1)})


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    route = request.scope.get("route")
    path = getattr(route, "path", None) or request.scope["path"]  # not request.url: built per request
    scope = required_scope(request.method, path)
    if scope is None:
        return ANONYMOUS
    auth: Authenticator = request.app.state.auth
    token = credentials.credentials if credentials is not None else None
    if token is None and path.startswith(CONSOLE):  # the console's pages: the session cookie
        token = request.cookies.get(SESSION_COOKIE) or None
    if token is None:
        if auth.required:
            raise _unauthorised("authentication required: send Authorization: Bearer <token>")
        principal = ANONYMOUS
    else:
        known, found = auth.cached(token)  # most requests: no thread, no database
        if not known:
            address = request.client.host if request.client else "-"
            wait = auth.failures.peek(address)
            if wait:
                _count_refusal(request, "failed_auth")
                raise _too_many("too many failed authentications from this address", wait)
            found = await run_in_threadpool(auth.verify, token)
            if found is None:
                auth.failures.allow(address)
        if found is None:
            raise _unauthorised("invalid, expired or revoked token")
        principal = found
    refusal = _refusal(principal, scope, auth)
    if refusal is not None:
        if refusal.status_code == 429:
            _count_refusal(request, "caller")
        raise refusal
    request.state.principal = principal
    return principal


def _refusal(principal: Principal, scope: str, auth: Authenticator) -> HTTPException | None:
    """Why a known caller may not go on (the scope, then the rate limit); None: admitted, and one
    token taken from its rate limit (a refusal takes none)."""
    if not any(principal.may(one) for one in scope.split("|")):
        needed = " or ".join(f"'{one}'" for one in scope.split("|"))
        return HTTPException(status_code=403, detail=f"this token lacks the {needed} scope")
    if principal.kind != "anonymous":
        wait = auth.limiter.allow(principal.label)
        if wait:
            return _too_many("rate limit exceeded", wait)
    return None


def admitted_at_once(auth: Authenticator, headers: list[tuple[bytes, bytes]], scope: str) -> Principal | None:
    """:func:`authenticate`'s caller where it would need no thread and refuse nothing: a bearer token
    verified in the last seconds, or no token where none is required. None: let :func:`authenticate`
    answer, in its own words (nothing was taken from the rate limit)."""
    given = [value for name, value in headers if name == b"authorization"]
    if not given:
        principal = None if auth.required else ANONYMOUS
    else:
        scheme, token = get_authorization_scheme_param(given[0].decode("latin-1"))  # as HTTPBearer
        if scheme.lower() != "bearer" or not token:
            return None
        known, principal = auth.cached(token)
        if not known:
            return None
    if principal is None or _refusal(principal, scope, auth) is not None:
        return None
    return principal


def principal_of(request: Request) -> Principal:
    """Who :func:`authenticate` found for this request (anonymous when auth is off)."""
    principal: Principal = getattr(request.state, "principal", ANONYMOUS)
    return principal


async def current_principal(request: Request) -> Principal:  # async: no thread hop per request
    return principal_of(request)


Caller = Annotated[Principal, Depends(current_principal)]


def requester(requested_by: str | None, caller: Principal) -> str | None:
    """Who asks: the authenticated caller. A different ``requested_by`` needs the ``delegate`` scope
    (then it is recorded as the requester and the caller as ``request.caller``); without
    authentication (a local, loopback service) the body's value stands."""
    if caller.kind == "anonymous":
        return requested_by
    if requested_by is None or requested_by.strip().lower() == caller.id.lower():
        return caller.id
    if caller.may("delegate"):
        return requested_by
    raise HTTPException(
        status_code=403,
        detail=f"requested_by {requested_by[:80]!r} is not the authenticated caller {caller.id!r}: ask as "
        "yourself, or with a token that has the 'delegate' scope to ask on someone's behalf",
    )
