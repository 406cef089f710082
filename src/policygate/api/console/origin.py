"""Login CSRF: a form posted to the console's sign-in or sign-out from another site is refused.

Browsers say where a request comes from: ``Sec-Fetch-Site`` (``same-origin`` for the console's own
forms, ``none`` when the user acts directly) and ``Origin`` on every POST (``null`` from the console's
own pages, which send no referrer). Either one naming another site refuses the request, and so does
an opaque ``null`` origin without ``Sec-Fetch-Site``; a request with neither header is no browser's
cross-site form (curl, scripts).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request

ALLOWED_FETCH_SITES = frozenset({"same-origin", "none"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def cross_site(request: Request) -> str | None:
    """Why the request comes from another site, or None when it does not."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site.strip().lower() not in ALLOWED_FETCH_SITES:
        return f"Sec-Fetch-Site: {site[:40]}"
    origin = request.headers.get("origin")
    if origin is None:
        return None
    if origin.strip() == "null":
        # the console's own pages send no referrer, so Chromium's forms say "Origin: null" and
        # Sec-Fetch-Site: same-origin; without that header, an opaque origin is no proof of anything
        return None if site is not None else "Origin null without Sec-Fetch-Site"
    if not _same_host(origin, request.headers.get("host") or ""):
        return f"Origin {origin[:200]} is not this console's"
    return None


def _same_host(origin: str, host: str) -> bool:
    """The origin names this console as the browser addressed it (the Host header). Without a port in
    Host, either default port matches: behind a TLS proxy the browser's scheme is not the one seen here."""
    try:
        parts = urlsplit(origin.strip())
        theirs = (parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme))
        ours = urlsplit(f"//{host.strip()}")
        name, port = ours.hostname or "", ours.port
    except ValueError:
        return False
    if parts.scheme not in DEFAULT_PORTS or not theirs[0] or theirs[0] != name:
        return False  # "null" (a sandboxed or opaque origin), another host
    return theirs[1] == port if port is not None else theirs[1] in DEFAULT_PORTS.values()
