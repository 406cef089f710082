"""MLflow tracking server / model registry -> evidence parts, with the MLflow client.

One collection is at most 5 REST calls: the version (or alias), then the
registered model and the run (or the LoggedModel first when the version has no
run id) in parallel, then the experiment. The whole collection is bounded by a
total timeout; MLflow's own retries are off so a dead server costs seconds, not minutes.

The model version itself (alias resolution, stage, status, tags: the approvals) is
read on every collection. What surrounds it (registered model, run, experiment) is
kept for ``cache_ttl_s`` seconds (``POLICYGATE_EVIDENCE_CACHE_TTL_S``, default 5;
0 turns it off), keyed by model name and version and reused only while the version
still names the same run and source: within the TTL a decision costs one call. The
evidence says when the cached answers were read (``collection.sources[].read_at``).
The version's files (POLICYGATE_ARTIFACTS__*) are never taken from the cache: they are
read and hashed again for every decision (sources/mlflow_artifacts.py says why).
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, TypeVar

from policygate.config.integrity import ArtifactSettings
from policygate.config.tags import TagMapping
from policygate.evidence import (
    Artifacts,
    ArtifactsUnverified,
    Code,
    Dataset,
    Experiment,
    Lineage,
    Run,
    Subject,
)
from policygate.integrity.files import GAP as ARTIFACTS_GAP
from policygate.integrity.files import ArtifactsUnavailable, unverified
from policygate.integrity.stream import Progress
from policygate.logredact import redact_url
from policygate.refs import ModelRef
from policygate.sources.base import Parts, SourceError, gaps_of
from policygate.sources.mlflow_artifacts import read_artifacts
from policygate.sources.tags import (
    approvals_from,
    iso_from_millis,
    ownership_from,
)
from policygate.timeutil import now_iso

PLATFORM = "mlflow"
APPROVALS_SOURCE = "mlflow:model-version-tag"
T = TypeVar("T")

_AUTH_CODES = {"UNAUTHENTICATED", "PERMISSION_DENIED", "UNAUTHORIZED"}
CACHE_MAX_ENTRIES = 1024
GRACE_S = 2.0  # past the files' budget, for a read the store stalls (its read timeout ends it)


@dataclass(frozen=True)
class _Read:
    """What MLflow answered about one model version, and when."""

    at: float  # time.monotonic()
    read_at: str  # ISO 8601, UTC: goes into the evidence
    made_from: tuple[Any, Any]  # the version's (run_id, source): reused only while they still hold
    rm: Any
    run: Any
    experiment: Any


_NOT_FOUND_CODES = {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"}


def safe_uri(uri: str) -> str:
    """The tracking URI without credentials (user, password, token query parameters)."""
    return redact_url(uri)


class MlflowSource:
    platform = PLATFORM

    def __init__(
        self,
        tracking_uri: str,
        tags: TagMapping | None = None,
        timeout_s: float = 10.0,
        cache_ttl_s: float = 5.0,
        artifacts: ArtifactSettings | None = None,
    ) -> None:
        if not tracking_uri:
            raise SourceError(
                PLATFORM, "configure", "no tracking URI: pass --mlflow-uri or set MLFLOW_TRACKING_URI"
            )
        # Bound every request; MLflow's default is 7 retries with backoff (minutes on a dead server).
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(1, int(timeout_s))))
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bars in a CI job's output
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri
        self.endpoint = safe_uri(tracking_uri)
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self.tags = tags or TagMapping()
        self.timeout_s = timeout_s
        self.cache_ttl_s = cache_ttl_s
        self.artifacts = artifacts or ArtifactSettings(enabled=False)
        self._cache: dict[tuple[str, str], _Read] = {}
        self._cache_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="mlflow-source")

    def probe(self) -> str | None:
        """The tracking server's own ``/health`` (no credentials needed), within 2 s."""
        if not self.tracking_uri.startswith(("http://", "https://")):
            return None
        import requests

        try:
            resp = requests.get(self.tracking_uri.rstrip("/") + "/health", timeout=2)
        except requests.RequestException as exc:
            return f"MLflow at {self.endpoint} does not answer: {type(exc).__name__}"
        if resp.status_code != 200:
            return f"MLflow at {self.endpoint} /health answered {resp.status_code}"
        return None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def collect(self, ref: ModelRef) -> Parts:
        deadline = time.monotonic() + self.timeout_s
        calls = 0

        def call(what: str, fn: Any, *args: Any) -> Future[Any]:
            nonlocal calls
            calls += 1
            return self._pool.submit(self._guard, what, fn, *args)

        def wait(what: str, future: Future[T]) -> T:
            try:
                return future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                future.cancel()
                raise SourceError(
                    PLATFORM, what, f"no answer from {self.endpoint} within {self.timeout_s:g} s (timeout)"
                ) from None

        # The version itself (its stage, status and tags: the approvals) is read on every
        # collection; only what rarely changes around it comes from the cache.
        if ref.alias:
            what = f"get model version by alias {ref.name}@{ref.alias}"
            mv = wait(what, call(what, self.client.get_model_version_by_alias, ref.name, ref.alias))
        else:
            what = f"get model version {ref.name}/{ref.version}"
            mv = wait(what, call(what, self.client.get_model_version, ref.name, str(ref.version)))
        # The files are read and hashed on every collection, never from the cache: the store proves
        # nothing about them being unchanged (sources/mlflow_artifacts.py).
        files = self._files(mv.source) if self.artifacts.enabled and mv.source else None
        cached = self._cached(ref.name, str(mv.version))
        if cached is not None and cached.made_from == (mv.run_id, mv.source):
            return self._parts_of(ref, mv, cached, calls, files)
        read_at = now_iso()

        registered = call(f"get registered model {ref.name}", self.client.get_registered_model, ref.name)
        run_id = mv.run_id or None
        logged_model_id = _logged_model_id(mv.source)
        if not run_id and logged_model_id:
            what = f"get logged model {logged_model_id}"
            logged = wait(what, call(what, self.client.get_logged_model, logged_model_id))
            run_id = logged.source_run_id or None
        run_future = call(f"get run {run_id}", self.client.get_run, run_id) if run_id else None
        rm = wait(f"get registered model {ref.name}", registered)
        run = wait(f"get run {run_id}", run_future) if run_future else None
        experiment = None
        if run is not None and run.info.experiment_id:
            what = f"get experiment {run.info.experiment_id}"
            experiment = wait(what, call(what, self.client.get_experiment, run.info.experiment_id))

        read = _Read(time.monotonic(), read_at, (mv.run_id, mv.source), rm, run, experiment)
        self._remember(ref.name, str(mv.version), read)
        return self._parts_of(ref, mv, read, calls, files)

    def _parts_of(self, ref: ModelRef, mv: Any, read: _Read, calls: int, files: _Files | None) -> Parts:
        parts = self._parts(ref, mv, read.rm, read.run, read.experiment)
        parts.calls = calls
        parts.read_at = read.read_at
        if files is not None:
            parts.artifacts, parts.artifacts_unverified = files.result()
            if parts.artifacts is None:
                parts.gaps.append(ARTIFACTS_GAP)
        return parts

    def _files(self, source: str) -> _Files:
        progress = Progress()
        return _Files(
            self._pool.submit(self._read_artifacts, source, progress), progress, source, self.artifacts
        )

    def _read_artifacts(self, source: str, progress: Progress) -> Artifacts | ArtifactsUnverified:
        try:
            return read_artifacts(source, self.tracking_uri, self.artifacts, progress)
        except ArtifactsUnavailable as exc:
            return unverified(source, exc, self.artifacts)
        except Exception as exc:  # noqa: BLE001 - whatever the store did, the files are not verified
            why = ArtifactsUnavailable(f"reading the files failed: {type(exc).__name__}")
            return unverified(source, why, self.artifacts)

    def _cached(self, name: str, version: str) -> _Read | None:
        if self.cache_ttl_s <= 0:
            return None
        with self._cache_lock:
            read = self._cache.get((name, version))
        if read is None or time.monotonic() - read.at >= self.cache_ttl_s:
            return None
        return read

    def _remember(self, name: str, version: str, read: _Read) -> None:
        if self.cache_ttl_s <= 0:
            return
        with self._cache_lock:
            if len(self._cache) >= CACHE_MAX_ENTRIES:
                now = time.monotonic()
                for key in [k for k, r in self._cache.items() if now - r.at >= self.cache_ttl_s]:
                    del self._cache[key]
                while len(self._cache) >= CACHE_MAX_ENTRIES:  # all fresh: drop the oldest
                    del self._cache[next(iter(self._cache))]
            self._cache[(name, version)] = read

    def _guard(self, what: str, fn: Any, *args: Any) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return fn(*args)
        except MlflowException as exc:
            code = str(getattr(exc, "error_code", "") or "")
            message = _first_line(exc.message if hasattr(exc, "message") else str(exc))
            if code in _NOT_FOUND_CODES or (code == "INVALID_PARAMETER_VALUE" and "alias" in message.lower()):
                raise SourceError(
                    PLATFORM, what, f"not found on {self.endpoint} ({message})", not_found=True
                ) from None
            if code in _AUTH_CODES or "401" in message or "403" in message:
                raise SourceError(
                    PLATFORM, what, f"not authorised by {self.endpoint} ({code or message})"
                ) from None
            if "API request to" in message or "Max retries" in message or "Connection" in message:
                raise SourceError(PLATFORM, what, f"{self.endpoint} unreachable") from None
            raise SourceError(PLATFORM, what, f"{code or 'error'}: {message}") from None
        except OSError as exc:
            raise SourceError(PLATFORM, what, f"{self.endpoint} unreachable ({type(exc).__name__})") from None

    def _parts(self, ref: ModelRef, mv: Any, rm: Any, run: Any, experiment: Any) -> Parts:
        version_tags: dict[str, str] = dict(mv.tags or {})
        model_tags: dict[str, str] = dict(rm.tags or {})
        aliases = sorted(set(mv.aliases or []) | ({ref.alias} if ref.alias else set()))
        subject = Subject(
            platform="mlflow",
            name=mv.name,
            version=str(mv.version),
            ref=str(ref.with_version(str(mv.version))),
            aliases=aliases,
            created_at=iso_from_millis(mv.creation_timestamp),
            created_by=mv.user_id or None,
            tags=version_tags,
        )
        ownership = ownership_from(self.tags, model_tags, version_tags)
        approvals, approvals_ok = approvals_from(version_tags.get(self.tags.approvals), APPROVALS_SOURCE)
        lineage = _lineage(run, experiment)

        gaps = gaps_of(subject, ownership, approvals_ok, lineage)
        return Parts(PLATFORM, self.endpoint, subject, ownership, lineage, approvals, None, gaps)


@dataclass(frozen=True)
class _Files:
    """The files being read and hashed for one collection (in the source's pool)."""

    future: Future[Artifacts | ArtifactsUnverified]
    progress: Progress
    source: str
    settings: ArtifactSettings

    def result(self) -> tuple[Artifacts | None, ArtifactsUnverified | None]:
        """The files' evidence: hashed, or why not. The reading keeps its own budget
        (POLICYGATE_ARTIFACTS__TIMEOUT_S); past it (and a little more, for a read the store stalls),
        it is stopped and the evidence says how much was read."""
        try:
            got = self.future.result(timeout=self.settings.timeout_s + GRACE_S)
        except FutureTimeout:
            self.progress.stop()
            got = unverified(
                self.source,
                ArtifactsUnavailable(
                    f"reading and hashing the model's files took longer than {self.settings.timeout_s:g} s",
                    "time_budget",
                    bytes_read=self.progress.bytes_read,
                    files_read=self.progress.files_read,
                ),
                self.settings,
            )
        return (got, None) if isinstance(got, Artifacts) else (None, got)


def _lineage(run: Any, experiment: Any) -> Lineage:
    if run is None:
        return Lineage()
    tags: dict[str, str] = dict(run.data.tags or {})
    info = run.info
    datasets = []
    for dataset_input in getattr(run.inputs, "dataset_inputs", None) or []:
        ds = dataset_input.dataset
        input_tags = {t.key: t.value for t in dataset_input.tags or []}
        datasets.append(
            Dataset(
                name=ds.name,
                digest=ds.digest or None,
                source=_dataset_uri(ds.source),
                context=input_tags.get("mlflow.data.context"),
            )
        )
    return Lineage(
        run=Run(
            platform=PLATFORM,
            id=info.run_id,
            status=info.status,
            experiment=Experiment(id=info.experiment_id, name=experiment.name if experiment else None),
            user=info.user_id or tags.get("mlflow.user") or None,
            start=iso_from_millis(info.start_time),
            end=iso_from_millis(info.end_time),
        ),
        code=Code(
            commit=tags.get("mlflow.source.git.commit") or None,
            repository=tags.get("mlflow.source.git.repoURL") or None,
            entry_point=tags.get("mlflow.source.name") or None,
        ),
        datasets=datasets,
    )


def _logged_model_id(source: str | None) -> str | None:
    if source and source.startswith("models:/m-"):
        return source.removeprefix("models:/").split("/", 1)[0]
    return None


def _dataset_uri(source: str | None) -> str | None:
    """Dataset sources are JSON strings such as {"uri": "s3://..."}; keep the URI."""
    if not source:
        return None
    try:
        parsed = json.loads(source)
    except ValueError:
        return source
    if isinstance(parsed, dict):
        for key in ("uri", "url", "path", "table_name"):
            if parsed.get(key):
                return str(parsed[key])
    return source


def _first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0][:300] if text and text.strip() else ""
