"""Every Azure call inside the collection's time budget, whatever transport sends it.

azure-core applies ``connection_timeout``/``read_timeout`` given to a client only to the transport
the client builds itself; a caller's own transport (docs/python-api.md) keeps its defaults (300 s
reads). :class:`BoundedTransport` wraps any transport and gives each request the smaller of the
configured timeouts and what is left of the current collection's budget, so a call to a hung
service ends by the collection's deadline: no worker of the source stays tied up after it, and the
first decision after Azure recovers is answered.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from azure.core.exceptions import ServiceRequestTimeoutError
from azure.core.pipeline.transport import HttpTransport

_budget = threading.local()


@contextlib.contextmanager
def deadline(at: float) -> Iterator[None]:
    """Requests sent by this thread inside the block end by ``at`` (time.monotonic())."""
    before = getattr(_budget, "at", None)
    _budget.at = at
    try:
        yield
    finally:
        _budget.at = before


class BoundedTransport(HttpTransport):
    def __init__(self, inner: Any, connection_timeout: float, read_timeout: float) -> None:
        self.inner = inner
        self.connection_timeout = connection_timeout
        self.read_timeout = read_timeout

    def send(self, request: Any, **kwargs: Any) -> Any:
        connect, read = self.connection_timeout, self.read_timeout
        at = getattr(_budget, "at", None)
        if at is not None:
            left = at - time.monotonic()
            if left <= 0:
                raise ServiceRequestTimeoutError("the collection's time budget is spent")
            connect, read = min(connect, left), min(read, left)
        kwargs["connection_timeout"] = min(kwargs.get("connection_timeout") or connect, connect)
        kwargs["read_timeout"] = min(kwargs.get("read_timeout") or read, read)
        return self.inner.send(request, **kwargs)

    def open(self) -> None:
        self.inner.open()

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> BoundedTransport:
        self.inner.__enter__()
        return self

    def __exit__(self, *args: Any) -> None:
        self.inner.__exit__(*args)

    def sleep(self, duration: float) -> None:
        self.inner.sleep(duration)
