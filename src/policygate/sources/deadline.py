"""One collection's calls, each run in the source's pool and waited for within one total deadline.

Every source sends its calls in parallel where it can and must answer within ``timeout_s`` however
many calls that takes; a call not answered by then is cancelled and becomes a SourceError naming
it, so a dead or hung service costs the budget, not minutes. The count of calls made goes into the
evidence (``collection.sources[].calls``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from policygate.sources.base import SourceError

T = TypeVar("T")


class Deadline:
    """``call`` submits ``guard(what, fn, *args)`` to the pool; ``wait`` takes its answer or, past the
    deadline, cancels it and raises. ``bound(at)``, when given, is entered around each call so the
    requests it sends end by the deadline too (policygate.sources.azureml.transport)."""

    def __init__(
        self,
        pool: Executor,
        timeout_s: float,
        platform: str,
        peer: str,
        guard: Callable[..., Any],
        bound: Callable[[float], AbstractContextManager[Any]] | None = None,
    ) -> None:
        self.at = time.monotonic() + timeout_s
        self.timeout_s = timeout_s
        self.calls = 0
        self._pool = pool
        self._platform = platform
        self._peer = peer
        self._guard = guard
        self._bound = bound

    def call(self, what: str, fn: Callable[..., T], *args: Any) -> Future[T]:
        self.calls += 1
        return self._pool.submit(self._run, what, fn, *args)

    def wait(self, what: str, future: Future[T]) -> T:
        try:
            return future.result(timeout=max(0.0, self.at - time.monotonic()))
        except FutureTimeout:
            future.cancel()
            raise SourceError(
                self._platform, what, f"no answer from {self._peer} within {self.timeout_s:g} s (timeout)"
            ) from None

    def _run(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        if self._bound is None:
            result: T = self._guard(what, fn, *args)
            return result
        with self._bound(self.at):
            bounded: T = self._guard(what, fn, *args)
            return bounded
