"""Per-caller token bucket: a runaway CI loop cannot starve everyone else."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# Buckets kept at most; beyond it, the ones full again are forgotten (a caller that has waited
# long enough is indistinguishable from a new one), so many addresses cannot grow memory unbounded.
MAX_BUCKETS = 10_000


class RateLimiter:
    def __init__(
        self, per_minute: int, burst: int | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(burst or max(1, per_minute // 6))
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> float:
        """0 when allowed (and one token taken), else the seconds to wait."""
        return self._take(key, 1.0)

    def peek(self, key: str) -> float:
        """As :meth:`allow`, without taking a token: is this key already over its limit?"""
        return self._take(key, 0.0)

    def _take(self, key: str, cost: float) -> float:
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - cost, now)
                if len(self._buckets) > MAX_BUCKETS:
                    self._forget_full(now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        for key, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * self.rate >= self.capacity:
                del self._buckets[key]
