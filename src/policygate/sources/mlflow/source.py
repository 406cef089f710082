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
read and hashed again for every decision (sources/mlflow/artifacts.py says why).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from policygate.config.integrity import ArtifactSettings
from policygate.config.tags import TagMapping
from policygate.evidence import Artifacts, ArtifactsUnverified
from policygate.integrity.files import GAP as ARTIFACTS_GAP
from policygate.integrity.files import ArtifactsUnavailable, unverified
from policygate.integrity.stream import Progress
from policygate.logredact import redact_url
from policygate.refs import ModelRef
from policygate.sources.base import Parts, SourceError, first_line
from policygate.sources.deadline import Deadline
from policygate.sources.mlflow.artifacts import Files, read_artifacts
from policygate.sources.mlflow.cache import Read, ReadCache
from policygate.sources.mlflow.mapping import PLATFORM, logged_model_id, parts_of
from policygate.timeutil import now_iso

_AUTH_CODES = {"UNAUTHENTICATED", "PERMISSION_DENIED", "UNAUTHORIZED"}
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
        self._cache = ReadCache(cache_ttl_s)
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
        calls = Deadline(self._pool, self.timeout_s, PLATFORM, self.endpoint, self._guard)
        call, wait = calls.call, calls.wait

        # The version itself (its stage, status and tags: the approvals) is read on every
        # collection; only what rarely changes around it comes from the cache.
        if ref.alias:
            what = f"get model version by alias {ref.name}@{ref.alias}"
            mv = wait(what, call(what, self.client.get_model_version_by_alias, ref.name, ref.alias))
        else:
            what = f"get model version {ref.name}/{ref.version}"
            mv = wait(what, call(what, self.client.get_model_version, ref.name, str(ref.version)))
        # The files are read and hashed on every collection, never from the cache: the store proves
        # nothing about them being unchanged (sources/mlflow/artifacts.py).
        files = self._files(mv.source) if self.artifacts.enabled and mv.source else None
        cached = self._cache.get(ref.name, str(mv.version))
        if cached is not None and cached.made_from == (mv.run_id, mv.source):
            return self._parts_of(ref, mv, cached, calls.calls, files)
        read_at = now_iso()

        registered = call(f"get registered model {ref.name}", self.client.get_registered_model, ref.name)
        run_id = mv.run_id or None
        logged_id = logged_model_id(mv.source)
        if not run_id and logged_id:
            what = f"get logged model {logged_id}"
            logged = wait(what, call(what, self.client.get_logged_model, logged_id))
            run_id = logged.source_run_id or None
        run_future = call(f"get run {run_id}", self.client.get_run, run_id) if run_id else None
        rm = wait(f"get registered model {ref.name}", registered)
        run = wait(f"get run {run_id}", run_future) if run_future else None
        experiment = None
        if run is not None and run.info.experiment_id:
            what = f"get experiment {run.info.experiment_id}"
            experiment = wait(what, call(what, self.client.get_experiment, run.info.experiment_id))

        read = Read(time.monotonic(), read_at, (mv.run_id, mv.source), rm, run, experiment)
        self._cache.put(ref.name, str(mv.version), read)
        return self._parts_of(ref, mv, read, calls.calls, files)

    def _parts_of(self, ref: ModelRef, mv: Any, read: Read, calls: int, files: Files | None) -> Parts:
        parts = parts_of(self.tags, self.endpoint, ref, mv, read.rm, read.run, read.experiment)
        parts.calls = calls
        parts.read_at = read.read_at
        if files is not None:
            parts.artifacts, parts.artifacts_unverified = files.result()
            if parts.artifacts is None:
                parts.gaps.append(ARTIFACTS_GAP)
        return parts

    def _files(self, source: str) -> Files:
        progress = Progress()
        return Files(
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

    def _guard(self, what: str, fn: Any, *args: Any) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return fn(*args)
        except MlflowException as exc:
            code = str(getattr(exc, "error_code", "") or "")
            message = first_line(exc.message if hasattr(exc, "message") else str(exc))
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
