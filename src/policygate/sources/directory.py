"""The identity directory: who the owner, the approvers and the deployment identity are (issue 29).

One interface, several providers chosen by ``POLICYGATE_DIRECTORY`` (``file:PATH``, ``scim:URL``,
``graph``).
A directory that is configured but cannot answer raises :class:`DirectoryError`, which the
collector turns into a failed collection (an ``error`` decision): never a silent pass.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from policygate.errors import PolicygateError
from policygate.logredact import redact


class DirectoryError(PolicygateError):
    """The directory could not answer (unreachable, refused, malformed)."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"directory {provider}: {redact(message)}")
        self.provider = provider


@dataclass(frozen=True)
class Credential:
    """A credential a service identity holds: secret, certificate or federated; expiry if any."""

    type: str
    expires: str | None = None


@dataclass(frozen=True)
class Entry:
    """One identity as the directory sees it; ``found`` false for an id the directory does not know."""

    id: str
    found: bool
    active: bool = False
    kind: str | None = None  # person or service
    groups: tuple[str, ...] = ()
    manager: str | None = None
    department: str | None = None
    owners: tuple[str, ...] = ()  # services: the people who own it
    credentials: tuple[Credential, ...] = field(default=())
    left: bool = False  # the directory says the person has left (not merely disabled)


class Directory(Protocol):
    provider: str

    def lookup(self, ids: Iterable[str]) -> dict[str, Entry]:
        """Each id (case-insensitive, keyed lower-cased) as the directory sees it, in as few calls as
        the directory allows; raise DirectoryError when it cannot answer."""
        ...

    def close(self) -> None: ...


class CachedDirectory:
    """Answers reused for ``ttl_s`` seconds (``POLICYGATE_DIRECTORY_CACHE_S``); unknown ids are cached
    too (a directory answer either way). Failures are never cached."""

    def __init__(self, inner: Directory, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.provider = inner.provider
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[str, tuple[float, Entry]] = {}
        self._lock = threading.Lock()
        self.calls = 0  # lookups that went to the directory (benchmarks, the audit)

    def lookup(self, ids: Iterable[str]) -> dict[str, Entry]:
        wanted = {i.strip().lower() for i in ids if i and i.strip()}
        now = self._clock()
        with self._lock:
            found = {i: e for i, (t, e) in self._entries.items() if i in wanted and now - t < self.ttl_s}
        missing = wanted - found.keys()
        if missing:
            fresh = self.inner.lookup(sorted(missing))
            self.calls += 1
            with self._lock:
                for i in missing:
                    entry = fresh.get(i) or Entry(id=i, found=False)
                    found[i] = entry
                    if self.ttl_s > 0:
                        self._entries[i] = (now, entry)
        return found

    def close(self) -> None:
        self.inner.close()


def build_directory(
    spec: str | None,
    token: str | None,
    timeout_s: float,
    cache_s: float,
    graph_url: str = "https://graph.microsoft.com",
    credential: Any = None,
    transport: Any = None,
) -> Directory | None:
    """The directory ``POLICYGATE_DIRECTORY`` names, cached; None when none is configured.
    ``credential`` and ``transport`` (azure-core) are the Azure source's, for ``graph``."""
    if not spec or not spec.strip():
        return None
    spec = spec.strip()
    inner: Directory
    if spec.startswith("file:"):
        from policygate.sources.directory_file import FileDirectory

        inner = FileDirectory(spec[len("file:") :])
    elif spec.startswith("scim:"):
        from policygate.sources.directory_scim import ScimDirectory

        inner = ScimDirectory(spec[len("scim:") :], token, timeout_s)
    elif spec == "graph":
        from policygate.sources.directory_graph import GraphDirectory

        inner = GraphDirectory(graph_url, credential, transport, timeout_s)
    else:
        raise ValueError(f"POLICYGATE_DIRECTORY must be file:PATH, scim:URL or graph, not {spec!r}")
    return CachedDirectory(inner, cache_s)
