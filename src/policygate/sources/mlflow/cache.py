"""What MLflow answered around one model version (registered model, run, experiment), kept for
``cache_ttl_s`` seconds (``POLICYGATE_EVIDENCE_CACHE_TTL_S``; 0: never) and at most
CACHE_MAX_ENTRIES versions. The version itself is never cached (policygate.sources.mlflow.source)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

CACHE_MAX_ENTRIES = 1024


@dataclass(frozen=True)
class Read:
    """What MLflow answered about one model version, and when."""

    at: float  # time.monotonic()
    read_at: str  # ISO 8601, UTC: goes into the evidence
    made_from: tuple[Any, Any]  # the version's (run_id, source): reused only while they still hold
    rm: Any
    run: Any
    experiment: Any


class ReadCache:
    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._cache: dict[tuple[str, str], Read] = {}
        self._lock = threading.Lock()

    def get(self, name: str, version: str) -> Read | None:
        if self.ttl_s <= 0:
            return None
        with self._lock:
            read = self._cache.get((name, version))
        if read is None or time.monotonic() - read.at >= self.ttl_s:
            return None
        return read

    def put(self, name: str, version: str, read: Read) -> None:
        if self.ttl_s <= 0:
            return
        with self._lock:
            if len(self._cache) >= CACHE_MAX_ENTRIES:
                now = time.monotonic()
                for key in [k for k, r in self._cache.items() if now - r.at >= self.ttl_s]:
                    del self._cache[key]
                while len(self._cache) >= CACHE_MAX_ENTRIES:  # all fresh: drop the oldest
                    del self._cache[next(iter(self._cache))]
            self._cache[(name, version)] = read
