"""How every console page is rendered: the templates, the security headers, and errors as pages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from policygate.api.auth import principal_of

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["json"] = lambda v: json.dumps(v, indent=2, sort_keys=True, default=str)
templates.env.filters["q"] = lambda v: quote(str(v), safe="")  # a path segment: model refs have slashes

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
