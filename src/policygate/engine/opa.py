"""Evaluate evidence with a real OPA server: a managed ``opa run`` child or one the user runs.

Every failure surfaces as :class:`EngineError`, so the caller can fail closed;
an undefined ``data.policygate.decision`` is an error, never an allow. The HTTP calls are
:class:`~policygate.engine.client.OpaHttp`'s, the managed process is
:class:`~policygate.engine.managed.ManagedOpa`; this class is what the rest of policygate holds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from policygate.engine.client import OpaHttp
from policygate.engine.errors import DECIDE, PARAMS_PATH, EngineError
from policygate.engine.http1 import Http1Pool
from policygate.engine.managed import ManagedOpa
from policygate.engine.result import Answer, answer_of, bundle_revision, decision_of
from policygate.engine.revision import revision_of

REVISION_TTL_S = 30.0


class OpaEngine(OpaHttp):
    """Queries ``data.policygate.decision`` over a keep-alive connection pool."""

    kind = "http"  # which engine decides (/readyz, each decision record); engine.inproc: "inprocess"

    def __init__(
        self,
        url: str,
        timeout_s: float = 5.0,
        managed: ManagedOpa | None = None,
        *,
        describe: Callable[[list[dict[str, Any]]], str] | None = None,
        token: str | None = None,
    ) -> None:
        super().__init__(
            url, timeout_s, describe=describe, token=token or (managed.token if managed else None)
        )
        self.managed = managed
        self._init_state()

    def _init_state(self) -> None:
        """What every engine keeps besides its connection (an in-process one too)."""
        self.rule_ids: list[str] = []  # the rules the loaded policy has (set by policy.load)
        # a file or module name as OPA knows it -> as the author edits it (policy.load serves a copy)
        self.local: Callable[[str], str] = lambda name: name
        self._revision: tuple[str, float] | None = None  # (revision, time.monotonic() when known)
        self._lock = threading.Lock()
        # evaluate_async: keep-alive connections on the running event loop (made on first use)
        self._async = None
        self._instance: tuple[str, str | None] | None = None  # (url, the id that OPA's labels give)

    @classmethod
    def start(
        cls, opa_url: str | None, binary: str, policy_dir: Path, *args: Any, **options: Any
    ) -> OpaEngine:
        """:func:`policygate.policy.serving.start_engine` (the same arguments), kept here because it
        is documented (docs/python-api.md): the OPA at ``opa_url``, or one started on ``policy_dir``."""
        # The one import in policygate.engine that goes up a layer: which OPA to start (external,
        # pulling bundles, a checked copy of a directory; in process or a server) needs the policy
        # checks, so the choice lives in policy.serving; this documented entry point only hands over.
        from policygate.policy.serving import start_engine

        return start_engine(opa_url, binary, policy_dir, *args, **options)

    @property
    def policy_files(self) -> Path | None:
        """The checked copy of the policy files that decides (None: an OPA policygate did not load)."""
        managed = self.managed
        return managed.policy_dir if managed is not None and not managed.pulls else None

    def reconnect(self, url: str) -> None:
        """Talk to the same OPA at a new address (the supervisor restarted it)."""
        client = self._client(url)
        with self._lock:
            old, self.client, self.url = self.client, client, url.rstrip("/")
        old.close_connection()

    def _take_policy(self, other: OpaEngine) -> None:
        """What describes the policy ``other`` serves, taken over (under the lock, by ``adopt``)."""
        self.describe = other.describe
        self.rule_ids = other.rule_ids
        self.local = other.local
        self._revision = other._revision

    def adopt(self, other: OpaEngine) -> Callable[[], None]:
        """Serve from ``other``'s OPA from now on (a checked reload). Returns what retires the OPA
        this engine used before, for the caller to run once queries in flight are done."""
        with self._lock:
            old_client, old_managed = self.client, self.managed
            self.url, self.client, self.managed = other.url, other.client, other.managed
            self.token = other.token
            self._take_policy(other)
            other.managed = None

        def retire() -> None:
            old_client.close_connection()
            if old_managed is not None:
                old_managed.stop()

        return retire

    def close(self) -> None:
        self.client.close_connection()
        if self._async is not None:
            self._async[2].close()
            self._async = None
        if self.managed:
            self.managed.stop()

    def __enter__(self) -> OpaEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def evaluate(self, evidence: dict[str, Any]) -> dict[str, Any]:
        return decision_of(self._query(evidence))

    def evaluate_many(
        self, documents: Sequence[dict[str, Any]], *, workers: int = 4
    ) -> list[dict[str, Any] | EngineError]:
        """:meth:`evaluate` on each document, in order: its decision, or the :class:`EngineError` it
        failed with (one document's failure is only its own). The batch paths (replay, audit) call
        this; over HTTP it is ``workers`` threads of single queries, in process one library call per
        chunk (:class:`policygate.engine.inproc.InprocessEngine`)."""

        def one(document: dict[str, Any]) -> dict[str, Any] | EngineError:
            try:
                return self.evaluate(document)
            except EngineError as exc:
                return exc

        if len(documents) <= 1 or workers <= 1:
            return [one(d) for d in documents]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, documents))

    def evaluate_revised(self, evidence: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """:meth:`evaluate`, with the revision of the bundle that answered this very query (OPA's
        provenance); None when OPA holds no bundle (policies loaded from a directory)."""
        answer = self.answer(evidence)
        return answer.result, answer.revision

    def answer(self, evidence: dict[str, Any]) -> Answer:
        """:meth:`evaluate_revised` with OPA's metrics and version: all a decision log event needs."""
        return answer_of(self._query(evidence, DECIDE), self.kind)

    async def evaluate_async(self, evidence: dict[str, Any], pool: Http1Pool | None = None) -> dict[str, Any]:
        return (await self.evaluate_revised_async(evidence, pool))[0]

    async def evaluate_revised_async(
        self, evidence: dict[str, Any], pool: Http1Pool | None = None
    ) -> tuple[dict[str, Any], str | None]:
        """:meth:`evaluate_revised` for the event loop: the same query and the same failures, over
        kept-alive connections that hold no thread (:mod:`policygate.engine.http1`); ``pool``: a
        caller's own (:meth:`new_pool`), for a loop other than the service's."""
        answer = await self.answer_async(evidence, pool)
        return answer.result, answer.revision

    async def answer_async(self, evidence: dict[str, Any], pool: Http1Pool | None = None) -> Answer:
        """:meth:`answer` for the event loop."""
        return answer_of(await self._query_async(evidence, pool), self.kind)

    def cached_revision(self) -> str | None:
        """The policy revision if it is cached and fresh, without asking OPA (None otherwise)."""
        known = self._revision  # one read: a consistent pair, no lock needed
        if known is None or time.monotonic() - known[1] > REVISION_TTL_S:
            return None
        return known[0]

    def instance_id(self) -> str | None:
        """The id OPA labels its decision-log events with (``GET /v1/config``: ``labels.id``, one per
        OPA process), read once per address; None when OPA does not say."""
        url, known = self.url, self._instance
        if known is not None and known[0] == url:
            return known[1]
        try:
            labels = (self._get("/v1/config").get("result") or {}).get("labels")
        except EngineError:  # e.g. an OPA whose authorization keeps its configuration: asked once
            labels = None
        found = labels.get("id") if isinstance(labels, dict) else None
        self._instance = (url, found if isinstance(found, str) else None)
        return self._instance[1]

    def instance_known(self) -> bool:
        """Whether :meth:`instance_id` was asked for the current address."""
        known = self._instance
        return known is not None and known[0] == self.url

    def cached_instance_id(self) -> str | None:
        """:meth:`instance_id` if it is known for the current address, without asking OPA."""
        known = self._instance
        return known[1] if known is not None and known[0] == self.url else None

    @property
    def policy_revision(self) -> str:
        """Digest of the policies and parameters OPA actually holds (refreshed every 30 s)."""
        with self._lock:
            return self.cached_revision() or self._refresh_locked()

    def refresh_revision(self) -> str:
        """Re-read the revision from OPA now and cache it: after a reload, not 30 s later."""
        with self._lock:
            return self._refresh_locked()

    def note_revision(self, revision: str) -> None:
        """Cache ``revision`` as what OPA holds, known without asking (the hot reload saw it load)."""
        with self._lock:
            self._revision = (revision, time.monotonic())

    def _refresh_locked(self) -> str:
        revision = self._fetch_revision()
        self._revision = (revision, time.monotonic())
        return revision

    def _fetch_revision(self) -> str:
        """The revision from what OPA holds (``GET /v1/policies`` and the parameters)."""
        policies = self._get("/v1/policies").get("result")
        if not isinstance(policies, list):
            raise EngineError("policy_error", "OPA answered GET /v1/policies with something unexpected")
        # a bundle policygate built names its revision (which covers all its data files) itself
        answer = self._get(f"/v1/data/{PARAMS_PATH}?provenance=true")
        bundled = bundle_revision(answer)
        if bundled is not None:
            return bundled
        modules = [(str(p.get("id", "")), str(p.get("raw", ""))) for p in policies if isinstance(p, dict)]
        return revision_of(modules, answer.get("result"))


__all__ = ["Answer", "EngineError", "OpaEngine"]
