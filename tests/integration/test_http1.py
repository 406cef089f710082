"""The event loop's HTTP/1.1 client for OPA queries, against small loopback servers that answer in
the ways a real server can: Content-Length, chunked, closing kept-alive connections, silence, garbage."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest
import uvloop

from policygate.engine.http1 import Http1Pool

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[bool]]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """Both event loops: the service runs on uvloop (when installed), tests elsewhere on asyncio."""
    return asyncio.run if request.param == "asyncio" else uvloop.run


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    return await reader.readexactly(length)


async def _serve(handler: Handler, requests: int, *, timeout_s: float = 2.0) -> tuple[list[bytes], int]:
    """Run ``requests`` posts against a server with ``handler``; returns the answers and connections."""
    connections = 0

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        n = 0
        try:
            while True:
                await _read_request(reader)
                n += 1
                if not await handler(reader, writer, n):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = Http1Pool("127.0.0.1", port, tls=False, timeout_s=timeout_s)
    answers = []
    try:
        for _ in range(requests):
            status, body = await pool.post_json("/v1/data/policygate/decision", b'{"input": {}}')
            assert status == 200
            answers.append(body)
    finally:
        pool.close()
        server.close()
    return answers, connections


async def _length(_: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
    body = b'{"result": {"n": %d}}' % n
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    writer.write(body)
    await writer.drain()
    return True


def test_connections_are_kept_alive(run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
    answers, connections = run(_serve(_length, 5))
    assert answers == [b'{"result": {"n": %d}}' % n for n in range(1, 6)] and connections == 1


def test_chunked_answers_are_assembled(run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
    async def chunked(_: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for part in (b'{"result": ', b'{"big": "' + b"x" * 5000 + b'"}', b"}"):
            writer.write(b"%x\r\n%s\r\n" % (len(part), part))
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    answers, connections = run(_serve(chunked, 3))
    assert all(a == b'{"result": {"big": "' + b"x" * 5000 + b'"}}' for a in answers) and connections == 1


def test_a_kept_alive_connection_the_server_closed_is_replaced(
    run: Callable[[Coroutine[Any, Any, Any]], Any],
) -> None:
    async def one_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
        await _length(reader, writer, n)
        return False  # close after answering, without saying so (no Connection: close)

    answers, connections = run(_serve(one_per_connection, 4))
    assert len(answers) == 4 and connections == 4


def test_connection_close_is_honoured(run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
    async def closing(_: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        return False

    answers, connections = run(_serve(closing, 3))
    assert answers == [b"{}"] * 3 and connections == 3


def test_silence_is_a_timeout(run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
    async def silent(reader: asyncio.StreamReader, _: asyncio.StreamWriter, n: int) -> bool:
        await asyncio.sleep(5)
        return False

    with pytest.raises(TimeoutError):
        run(_serve(silent, 1, timeout_s=0.3))


def test_garbage_is_a_connection_error(run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
    async def garbage(_: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.5)
        return False

    with pytest.raises(ConnectionError):
        run(_serve(garbage, 1))


def test_nobody_listening_is_a_connection_error(run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
    async def go() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        await Http1Pool("127.0.0.1", port, tls=False, timeout_s=1).post_json("/", b"{}")

    with pytest.raises(ConnectionError):
        run(go())
