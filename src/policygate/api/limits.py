"""Request bodies: refused over the size limit (announced or chunked), when stalled, too deep or
with duplicate keys; before any route or parser sees them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from policygate import jsonload


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        for name, value in scope.get("headers") or ():  # as dict(headers) would: the last one counts
            if name == b"content-length":
                declared = value
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        seen = 0
        too_large = False

        async def limited_receive() -> Message:
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    too_large = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # Frameworks turn a failed body read into their own 400; the 413 below replaces it.
            if not too_large:
                await send(message)

        with contextlib.suppress(_TooLarge):
            await self.app(scope, limited_receive, guarded_send)
        if too_large:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        message = f"request body exceeds {self.max_bytes} bytes"
        await send_error(send, 413, "payload_too_large", message, close=True)


async def send_error(send: Send, status: int, error: str, message: str, *, close: bool = False) -> None:
    """Answer with the service's one error shape, from below the framework; ``close``: and end the
    connection (a body left unread cannot be followed by another request)."""
    body = json.dumps({"error": error, "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


def json_depth(body: bytes) -> int:
    """Deepest nesting of arrays/objects, ignoring brackets inside strings."""
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRINGS.sub(b'""', body)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


PARSED = "policygate.json"  # the scope key of a body that parsed (and passed): no route parses it twice


class JsonBodyCheck:
    """Read a request body within ``timeout_s`` (a stalled body is 408, its connection freed) and
    refuse JSON nested deeper than the limit, before any parser recurses into it, or with a key
    given twice in one object (422 naming the key). A body that parses is left in the scope under
    :data:`PARSED`."""

    def __init__(self, app: ASGIApp, max_depth: int = 64, timeout_s: float = 10.0) -> None:
        self.app = app
        self.max_depth = max_depth
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH", "DELETE"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        try:
            async with asyncio.timeout(self.timeout_s):  # the whole body, not each chunk
                while more:
                    message = await receive()
                    if message["type"] != "http.request":
                        break
                    chunks.append(message.get("body", b""))
                    more = message.get("more_body", False)
        except TimeoutError:
            stalled = f"request body not received within {self.timeout_s:g} s"
            await send_error(send, 408, "request_timeout", stalled, close=True)
            return
        if more:  # the client went away (http.disconnect) before the body was complete
            await self.app(scope, _replay([message]), send)
            return
        body = b"".join(chunks)
        problem = self._problem(scope, body)
        if problem is not None:
            await send_error(send, 422, "invalid_request", problem)
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}]), send)

    def _problem(self, scope: Scope, body: bytes) -> str | None:
        # nesting cannot exceed the number of opening brackets: most bodies need no scan at all
        if body.count(b"[") + body.count(b"{") > self.max_depth and json_depth(body) > self.max_depth:
            return f"JSON nested deeper than {self.max_depth} levels"
        if body[:1] in (b"{", b"[") or _is_json(scope):
            try:
                scope[PARSED] = jsonload.loads(body)
            except jsonload.DuplicateKeyError as exc:
                return f"body: {exc}"
            except ValueError:
                return None  # not JSON: the route's own parser names that
        return None


def content_type(scope: Scope) -> bytes | None:
    """The first Content-Type header's value, as the framework reads it."""
    for name, value in scope.get("headers") or ():
        if name == b"content-type":
            return value
    return None


def _is_json(scope: Scope) -> bool:
    return b"json" in (content_type(scope) or b"")


def _replay(messages: list[Message]) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        return {"type": "http.disconnect"}

    return receive
