"""A small HTTP/1.1 keep-alive client for the event loop: POST one JSON body to OPA, read the answer.

Only the hot path uses it (``OpaEngine.evaluate_async``, the decision query of ``POST
/v1/evaluate``); everything else talks to OPA through opa-python-client. Measured on the
project machine (bench/run_all.py, docs/benchmarks.md), one decision query cost about
0.16 ms of CPU through aiohttp (opa-python-client's AsyncOpaClient) and 0.04 ms here,
on a service whose whole budget per decision is about 1 ms. Responses are parsed by
httptools (llhttp: Content-Length and chunked bodies, keep-alive); TLS when the URL is https.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any, cast

import httptools

from policygate.errors import PolicygateError

MAX_IDLE = 64


class ProtocolError(PolicygateError, ConnectionError):
    """The server's answer was not HTTP/1.1 as we know it."""


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.chunks: list[bytes] = []
        self.answered = False  # any byte of the current answer received
        self.lost = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses

    def data_received(self, data: bytes) -> None:
        self.answered = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"malformed HTTP answer: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._fail(ConnectionError("the server closed the connection"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            status = int(self.parser.get_status_code())
            waiter.set_result((status, b"".join(self.chunks), bool(self.parser.should_keep_alive())))

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    async def exchange(self, request: bytes) -> tuple[int, bytes, bool]:
        assert self.transport is not None
        self.chunks, self.answered = [], False
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            with contextlib.suppress(Exception):  # a loop already closed
                self.transport.close()


class Http1Pool:
    """Keep-alive connections to one ``host:port`` for the loop that uses it."""

    def __init__(
        self, host: str, port: int, *, tls: bool, timeout_s: float, token: str | None = None
    ) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self.ssl: ssl.SSLContext | None = ssl.create_default_context() if tls else None
        self.authority = f"{host}:{port}".encode("idna")
        # OPA's token authentication (the managed OPA answers nobody else)
        self.auth = b"Authorization: Bearer %s\r\n" % token.encode() if token else b""
        self._idle: list[_Connection] = []

    async def post_json(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST ``body`` (JSON) to ``path``; returns (status, body). Raises ConnectionError or
        TimeoutError. A kept-alive connection the server had closed is retried once on a new one
        (only when nothing of the answer came back: the request is a query, safe to repeat)."""
        head = (
            b"POST %s HTTP/1.1\r\nHost: %s\r\n%sContent-Type: application/json\r\n"
            b"Accept: application/json\r\nContent-Length: %d\r\n\r\n"
        ) % (path.encode(), self.authority, self.auth, len(body))
        async with asyncio.timeout(self.timeout_s):
            for attempt in (1, 2):
                conn = self._take()
                reused = conn is not None
                if conn is None:
                    conn = await self._connect()
                try:
                    status, answer, keep_alive = await conn.exchange(head + body)
                except ConnectionError:
                    conn.close()
                    if reused and attempt == 1 and not conn.answered:
                        continue
                    raise
                except BaseException:  # cancelled or timed out mid-answer: the connection is spent
                    conn.close()
                    raise
                if keep_alive and not conn.lost and len(self._idle) < MAX_IDLE:
                    self._idle.append(conn)
                else:
                    conn.close()
                return status, answer
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _take(self) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if not conn.lost:
                return conn
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        options: dict[str, Any] = {"ssl": self.ssl, "server_hostname": self.host} if self.ssl else {}
        _, conn = await loop.create_connection(_Connection, self.host, self.port, **options)
        return conn

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
