"""The issuer's signing keys, fetched so that no caller can make the service wait on the issuer.

One fetch at a time (single flight), with a short timeout; keys cached for ``lifespan_s``; a
``kid`` the cached set lacks triggers at most one refresh per ``min_refresh_s``. Until then an
unknown ``kid`` is simply unknown: a flood of JWT-shaped tokens with random ``kid``s costs one
fetch, and no thread ever waits behind another's fetch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import jwt
import requests

log = logging.getLogger(__name__)


class KeySet:
    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 3.0,
        lifespan_s: float = 300.0,
        min_refresh_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        session: requests.Session | None = None,
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.lifespan_s = lifespan_s
        self.min_refresh_s = min_refresh_s
        self.clock = clock
        self.session = session or requests.Session()
        self.fetches = 0
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None  # last attempt, successful or not
        self._fresh_until = 0.0
        self._flight = threading.Lock()

    def key(self, kid: str) -> Any | None:
        """The verification key for ``kid``, or None when the issuer does not publish it (as far
        as a refresh allowed now can tell)."""
        now = self.clock()
        keys = self._keys
        if kid in keys and now < self._fresh_until:
            return keys[kid]
        if self._fetched_at is not None and now - self._fetched_at < self.min_refresh_s:
            return keys.get(kid)  # refreshed a moment ago: an unknown kid stays unknown until later
        if not self._flight.acquire(blocking=False):
            return keys.get(kid)  # someone else is fetching: answer with what we have, never wait
        try:
            self._refresh()
        finally:
            self._flight.release()
        return self._keys.get(kid)

    def _refresh(self) -> None:
        self._fetched_at = self.clock()
        self.fetches += 1
        try:
            resp = self.session.get(self.url, timeout=self.timeout_s)
            resp.raise_for_status()
            found = jwt.PyJWKSet.from_dict(resp.json())
        except (requests.RequestException, ValueError, jwt.PyJWTError) as exc:
            log.warning("JWKS %s could not be read: %s", self.url, type(exc).__name__)
            return  # keep the keys we had (an issuer outage does not log everyone out at once)
        self._keys = {k.key_id: k.key for k in found.keys if k.key_id}
        self._fresh_until = self.clock() + self.lifespan_s

    def close(self) -> None:
        self.session.close()
