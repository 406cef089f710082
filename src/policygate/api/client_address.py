"""The client address of each HTTP request ("host:port", as OPA writes ``requested_by``), for the
decision it leads to (decisions/opa_event.py): a plain ASGI middleware setting a context variable."""

from __future__ import annotations

from typing import Any

from policygate.decisions.opa_event import client_address


class ClientAddress:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        client = scope.get("client") if scope["type"] == "http" else None
        if not client:
            await self.app(scope, receive, send)
            return
        host, port = client[0], client[1]
        token = client_address.set(f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}")
        try:
            await self.app(scope, receive, send)
        finally:
            client_address.reset(token)
