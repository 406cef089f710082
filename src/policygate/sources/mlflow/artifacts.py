"""The files behind an MLflow model version (its source: a LoggedModel ``models:/m-...`` or a run's
``runs:/.../model``), listed, then each hashed while it streams from the store, several at a time,
within the budget of POLICYGATE_ARTIFACTS__* (integrity/stream.py): nothing is written to disk.

Two stores are streamed: the tracking server's proxied store (``mlflow-artifacts:``, ``--serve-artifacts``:
one GET per file through the server) and a local artifact root (read in place). Any other store (S3,
GCS, Azure through MLflow's own clients), and a model carrying a ``model.sig`` when signing keys are
configured (OpenSSF model signing verifies a directory), is downloaded to a temporary directory first,
then hashed (the sizes the store lists are checked against the cap before downloading).

Nothing is reused across collections: neither store gives an ETag, a version id or a modification time
it guarantees (the proxied listing gives path and size only), and a file replaced by one of the same
size must still be noticed (INT-002). Every decision reads and hashes the files again.
"""

from __future__ import annotations

import posixpath
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from policygate.config.integrity import ArtifactSettings
from policygate.evidence import Artifacts, ArtifactSignature, ArtifactsUnverified
from policygate.integrity.files import ArtifactsUnavailable, artifacts_from, artifacts_of, unverified
from policygate.integrity.manifest import CHUNK, NOT_MODEL_FILES, SIGNATURE_FILE
from policygate.integrity.stream import Progress, StoredFile, hash_stored
from policygate.logredact import redact_url

GRACE_S = 2.0  # past the files' budget, for a read the store stalls (its read timeout ends it)
MAX_LISTED = 10_000  # files in one model: more is refused rather than listed for ever


def read_artifacts(
    source: str, tracking_uri: str, settings: ArtifactSettings, progress: Progress | None = None
) -> Artifacts:
    deadline = time.monotonic() + settings.timeout_s
    try:
        repo = _repository(source, tracking_uri)
        listed = _listing(repo, deadline)
    except ArtifactsUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - any store (s3:// without boto3, ...): the gap is named
        raise ArtifactsUnavailable(f"cannot list {redact_url(source)}: {type(exc).__name__}") from None
    signed = SIGNATURE_FILE in listed
    model = {path: size for path, size in listed.items() if path not in NOT_MODEL_FILES}
    if not model:
        raise ArtifactsUnavailable(f"no files at {redact_url(source)}", size=0, files=0)
    size = sum(model.values())
    if size > settings.max_bytes:
        raise ArtifactsUnavailable(
            f"the model's files are larger than {settings.max_bytes} bytes",
            "size_cap",
            size=size,
            files=len(model),
        )
    opener = _opener(repo, deadline)
    if opener is None or (signed and (settings.signing_keys or settings.signing_certificates)):
        return _downloaded(source, tracking_uri, settings, deadline, size, len(model))
    files = [
        StoredFile(path, listed_size, partial(opener, path)) for path, listed_size in sorted(model.items())
    ]
    manifest = hash_stored(
        files, max_bytes=settings.max_bytes, deadline=deadline, parallel=settings.parallel, progress=progress
    )
    return artifacts_from(manifest, source, ArtifactSignature(status="unchecked" if signed else "absent"))


def _repository(source: str, tracking_uri: str) -> Any:
    """The store holding the files (through ``models:/`` and ``runs:/`` to the repository under them)."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    from mlflow.tracking import _tracking_service

    with _tracking_service.utils._use_tracking_uri(tracking_uri):
        repo = get_artifact_repository(source, tracking_uri=tracking_uri, registry_uri=tracking_uri)
        while hasattr(repo, "repo"):  # ModelsArtifactRepository, RunsArtifactRepository
            repo = repo.repo
    return repo


def _listing(repo: Any, deadline: float) -> dict[str, int]:
    """Every file under the repository's root: path -> size (a listing without a size is refused)."""
    found: dict[str, int] = {}
    pending: list[str | None] = [None]
    while pending:
        if time.monotonic() > deadline:
            raise ArtifactsUnavailable("listing the model's files took longer than the budget", "time_budget")
        for info in repo.list_artifacts(pending.pop()):
            path = str(info.path)
            if info.is_dir:
                pending.append(path)
                continue
            if info.file_size is None:
                raise ArtifactsUnavailable(f"the store lists {path[:200]!r} without a size")
            found[path] = int(info.file_size)
            if len(found) > MAX_LISTED:
                raise ArtifactsUnavailable(f"the model has more than {MAX_LISTED} files")
    return found


def _opener(repo: Any, deadline: float) -> Any:
    """How to stream one file of this store, or None for a store that is downloaded instead."""
    from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    if isinstance(repo, HttpArtifactRepository):
        return partial(_http_chunks, repo, deadline)
    if isinstance(repo, LocalArtifactRepository):
        return partial(_local_chunks, Path(repo.artifact_dir))
    return None


@contextmanager
def _http_chunks(repo: Any, deadline: float, path: str) -> Iterator[Iterator[bytes]]:
    """One GET through the tracking server, streamed; the connection is closed on exit (also when
    the hashing stops it half-way)."""
    from mlflow.utils.rest_utils import augmented_raise_for_status, http_request

    # the read timeout bounds each wait for bytes: a stalled store cannot outlive the budget by more
    timeout = max(1, min(30, int(deadline - time.monotonic()) + 1))
    resp = http_request(repo._host_creds, posixpath.join("/", path), "GET", stream=True, timeout=timeout)
    try:
        augmented_raise_for_status(resp)
        yield resp.iter_content(chunk_size=CHUNK)
    finally:
        resp.close()


@contextmanager
def _local_chunks(root: Path, path: str) -> Iterator[Iterator[bytes]]:
    """A file of a local artifact root, read in place (a symbolic link is refused: it can point anywhere)."""
    file = root.joinpath(*path.split("/"))
    if file.is_symlink() or not file.resolve().is_relative_to(root.resolve()):
        raise ArtifactsUnavailable(f"{path[:200]} is a symbolic link: refused")
    with file.open("rb") as fh:
        yield iter(partial(fh.read, CHUNK), b"")


def _downloaded(
    source: str, tracking_uri: str, settings: ArtifactSettings, deadline: float, size: int, files: int
) -> Artifacts:
    import mlflow.artifacts

    workdir = Path(tempfile.mkdtemp(prefix="policygate-artifacts-"))
    try:
        try:
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=source, dst_path=str(workdir), tracking_uri=tracking_uri
                )
            )
        except Exception as exc:  # noqa: BLE001 - any store (s3:// without boto3, ...): the gap is named
            raise ArtifactsUnavailable(
                f"cannot download {redact_url(source)}: {type(exc).__name__}", size=size, files=files
            ) from None
        if time.monotonic() > deadline:
            raise ArtifactsUnavailable(
                f"downloading took longer than {settings.timeout_s:g} s",
                "time_budget",
                size=size,
                files=files,
            )
        try:
            return artifacts_of(local if local.is_dir() else local.parent, source, settings, deadline)
        except ArtifactsUnavailable as exc:
            exc.size, exc.files = size, files
            raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass(frozen=True)
class Files:
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
