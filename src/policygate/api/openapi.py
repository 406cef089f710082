"""The OpenAPI document says exactly what the service does: which routes need which token, and every
error status a route can answer with (one error shape everywhere), so clients and fuzzers can rely on it."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from policygate.api.auth import required_scope

ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "Machine-readable kind, e.g. invalid_request."},
        "message": {"type": "string", "description": "What is wrong, naming the field or limit."},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
_DESCRIPTIONS = {
    400: "Malformed body, event or delivery",
    401: "Missing, invalid, expired or revoked credentials",
    403: "The token lacks the scope this route needs",
    404: "Not found",
    413: "Request body over the size limit",
    422: "Invalid request: the message names the field",
    429: "Rate limit exceeded (see Retry-After)",
    503: "Decision log or a required component unavailable",
}


def _error_codes(method: str, path: str, scope: str | None) -> list[int]:
    codes = [422, 503]
    if method in ("post", "put", "patch"):
        codes += [400, 413]  # 400: a body that is not even JSON text (e.g. not UTF-8)
    if scope is not None:
        codes += [401, 403, 429]
    if path.startswith("/v1/webhooks/"):
        codes += [400, 401]
    if "{" in path or method == "delete":
        codes.append(404)
    return codes


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, routes=app.routes, description=app.description
        )
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for path, operations in schema.get("paths", {}).items():
            for method, op in operations.items():
                scope = required_scope(method.upper(), path)
                if scope is None:
                    op.pop("security", None)
                else:
                    op["security"] = [{"HTTPBearer": []}]
                responses = op.setdefault("responses", {})
                for code in _error_codes(method, path, scope):
                    responses[str(code)] = {"description": _DESCRIPTIONS[code], "content": error_ref}
        for unused in ("HTTPValidationError", "ValidationError"):
            schema["components"]["schemas"].pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
