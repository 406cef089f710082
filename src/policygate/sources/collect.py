"""Ask the source for the referenced platform, follow the link to its counterpart, assemble one document.

A model known to two platforms is linked by a tag on the version the caller
names (the primary): an MLflow version tagged ``azureml.model`` with an Azure ML
reference, or an Azure ML model version tagged ``mlflow.model`` with an MLflow
reference (tag names are configuration: ``POLICYGATE_LINKS__AZUREML``,
``POLICYGATE_LINKS__MLFLOW``). One hop only: the counterpart's own links are not
followed. A counterpart that cannot be read is listed in ``collection.sources``
with ``ok: false`` (EVD-001 denies on it); it is never silently dropped.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from policygate.config.links import CounterpartLinks
from policygate.evidence import EvidenceV1, Identities, Request, SourceStatus
from policygate.refs import ModelRef, RefError, parse
from policygate.sources.base import EvidenceSource, Parts, SourceError
from policygate.sources.caps import cap_values
from policygate.sources.directory import Directory, DirectoryError
from policygate.sources.identities import identities_of
from policygate.sources.merge import merge
from policygate.timeutil import now_iso


class Collector:
    def __init__(
        self,
        sources: Mapping[str, EvidenceSource],
        links: CounterpartLinks | None = None,
        directory: Directory | None = None,
        budget_s: float | None = None,
    ) -> None:
        self.sources = dict(sources)
        self.directory = directory  # POLICYGATE_DIRECTORY: identities looked up (docs/identity.md)
        self.budget_s = budget_s  # POLICYGATE_SOURCE_TIMEOUT_S: the directory gets what the sources left
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self.links = links if links is not None else CounterpartLinks()  # Settings.links: the caller's
        self._last = threading.local()

    def collect(self, ref: ModelRef, request: Request) -> EvidenceV1:
        source = self.sources.get(ref.platform)
        if source is None:
            hint = (
                "--mlflow-uri or MLFLOW_TRACKING_URI"
                if ref.platform == "mlflow"
                else "the workspace settings"
            )
            raise SourceError(ref.platform, "configure", f"no {ref.platform} source configured (set {hint})")
        started = time.monotonic()
        primary = source.collect(ref)
        parts = [primary]
        failed: list[SourceStatus] = []
        for platform, tag, raw in self._links(primary):
            counterpart, status = self._counterpart(primary, platform, tag, raw)
            if counterpart is not None:
                parts.append(counterpart)
            if status is not None:
                failed.append(status)
        self._last.calls = sum(p.calls for p in parts)
        evidence = cap_values(merge(parts, request, collected_at=now_iso(), failed=failed))
        if self.directory is not None:
            try:  # a configured directory that cannot answer fails the collection: an error decision
                evidence.identities, gaps = self._identities(evidence, self.directory, started)
            except DirectoryError as exc:
                raise SourceError("directory", "lookup", str(exc)) from None
            evidence.collection.gaps.extend(g for g in gaps if g not in evidence.collection.gaps)
        return evidence

    def _identities(
        self, evidence: EvidenceV1, directory: Directory, started: float
    ) -> tuple[Identities, list[str]]:
        """The directory lookup within what is left of the collection's budget: a slow directory
        makes the decision an ``error`` at the deadline, never a late answer."""
        if self.budget_s is None:
            return identities_of(evidence, directory)
        left = self.budget_s - (time.monotonic() - started)
        timeout = f"no answer within the collection's {self.budget_s:g} s budget (timeout)"
        if left <= 0:
            raise SourceError("directory", "lookup", f"not asked: the sources used up the budget; {timeout}")
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="policygate-directory")
            future = self._pool.submit(identities_of, evidence, directory)
        try:
            return future.result(timeout=left)
        except FutureTimeout:
            future.cancel()
            raise SourceError("directory", "lookup", f"directory {directory.provider}: {timeout}") from None

    @property
    def last_calls(self) -> int:
        """Platform calls of this thread's last collection (the audit and the benchmarks count them)."""
        return int(getattr(self._last, "calls", 0))

    def _links(self, primary: Parts) -> list[tuple[str, str, str]]:
        """(counterpart platform, tag, value) for each link tag present on the primary version."""
        found = []
        for platform in ("mlflow", "azureml"):
            tag = self.links.tag_for(platform)
            if platform != primary.platform and tag and (primary.subject.tags.get(tag) or "").strip():
                found.append((platform, tag, primary.subject.tags[tag].strip()))
        return found

    def _counterpart(
        self, primary: Parts, platform: str, tag: str, raw: str
    ) -> tuple[Parts | None, SourceStatus | None]:
        where = f"tag {tag} on {primary.subject.ref}"
        try:
            ref = parse(f"mlflow:{raw}" if raw.startswith("models:/") else raw)
        except RefError:
            return None, SourceStatus(
                platform=platform,
                ok=False,
                error=f"{where} is not a valid {platform} model reference: {raw!r}",
            )
        if ref.platform != platform:
            return None, SourceStatus(
                platform=platform,
                ok=False,
                error=f"{where} names a {ref.platform} model, not {platform}: {raw!r}",
            )
        source = self.sources.get(platform)
        if source is None:
            return None, SourceStatus(
                platform=platform,
                ok=False,
                error=f"{where} links {ref} but no {platform} source is configured",
            )
        try:
            return source.collect(ref), None
        except SourceError as exc:
            return None, SourceStatus(
                platform=platform,
                endpoint=getattr(source, "endpoint", None),
                ok=False,
                error=f"counterpart {ref} ({where}): {exc}",
            )

    def probe(self) -> dict[str, str | None]:
        """Each probed source's readiness, by platform (None: ready); Azure ML is not probed."""
        return {
            platform: source.probe()
            for platform, source in self.sources.items()
            if getattr(source, "probed", True)
        }

    def close(self) -> None:
        for source in self.sources.values():
            with contextlib.suppress(Exception):
                source.close()
        if self.directory is not None:
            with contextlib.suppress(Exception):
                self.directory.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
