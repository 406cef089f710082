"""Signing in to the console and out: the session cookie holds the caller's own token (HttpOnly,
SameSite=Strict, Secure unless served over plain http on loopback), checked on every request."""

from __future__ import annotations

import ipaddress
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from policygate.api.auth import SESSION_COOKIE
from policygate.api.console.origin import cross_site
from policygate.api.console.pages import SECURITY_HEADERS, error_page, page
from policygate.auth.authenticator import Authenticator

router = APIRouter(prefix="/ui", include_in_schema=False)

SESSION_S = 8 * 3600


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
