"""The files behind an Azure ML model version: its ``modelUri``
(``azureml://.../datastores/NAME/paths/PREFIX``), the datastore's storage account and container
(``datastores.get``, without secrets: policygate reads the blobs with its own identity, which needs
*Storage Blob Data Reader* on the account), then the blobs under the prefix, listed, and each hashed
while it downloads (several at a time, integrity/stream.py: nothing written to disk) within the budget
of POLICYGATE_ARTIFACTS__*. A model carrying a ``model.sig`` while signing keys are configured is
downloaded to a temporary directory instead (OpenSSF model signing verifies a directory).

The listing gives each blob's ETag, size and last-modified time; when all of them are what the
previous read of the same version saw, its result is used again without downloading: Blob Storage
guarantees a new ETag with every write, so a replaced file is never missed. Each download is
conditional on the ETag listed (``If-Match``): a blob replaced between listing and download fails the
read (INT-003, ``store``), never mixes two versions of the files. When the Get Blob answer carries
the blob's ``Content-MD5`` (set when it was uploaded whole), the bytes read are checked against it.
Per-range ``x-ms-content-crc64`` is not asked for (the SDK checks it only with an optional native
extension). Registry models' files are not read yet (INT-003, ``store``).
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

from policygate.config.integrity import ArtifactSettings
from policygate.evidence import Artifacts, ArtifactSignature
from policygate.integrity.files import ArtifactsUnavailable, artifacts_from, artifacts_of
from policygate.integrity.manifest import NOT_MODEL_FILES, SIGNATURE_FILE, BudgetExceeded
from policygate.integrity.stream import StoredFile, hash_stored
from policygate.logredact import redact_url

DATASTORE_URI = re.compile(
    r"^azureml://(?:subscriptions/[^/]+/resourcegroups/[^/]+/"
    r"(?:providers/microsoft\.machinelearningservices/)?workspaces/[^/]+/)?"
    r"datastores/(?P<datastore>[^/]+)/paths/(?P<path>.+)$",
    re.IGNORECASE,
)
CACHED_VERSIONS = 256


@dataclass(frozen=True)
class Blob:
    name: str
    relative: str  # the file's path in the model, "/"-separated
    size: int
    etag: str
    modified: str


class AzureArtifactReader:
    """Reads and hashes model files from workspace datastores; one per source (it keeps the cache)."""

    def __init__(self, settings: ArtifactSettings, credential: Any, client_options: dict[str, Any]) -> None:
        self.settings = settings
        self._credential = credential
        self._options = client_options
        self._cache: OrderedDict[str, tuple[tuple[Blob, ...], Artifacts]] = OrderedDict()
        self._lock = threading.Lock()
        self.downloads = 0  # blobs downloaded since start (what the cache saves shows here)

    def read(self, ml: Any, model_uri: str | None) -> Artifacts:
        deadline = time.monotonic() + self.settings.timeout_s
        match = DATASTORE_URI.match(model_uri or "")
        if model_uri is None or match is None:
            raise ArtifactsUnavailable(
                f"{redact_url(model_uri or 'no modelUri')} is not on a workspace datastore"
            )
        datastore = ml.datastores.get(match["datastore"])
        container = self._container(datastore)
        blobs = _listed(container, match["path"])
        model = [b for b in blobs if b.relative not in NOT_MODEL_FILES]
        total = sum(b.size for b in model)
        if total > self.settings.max_bytes:
            raise ArtifactsUnavailable(
                f"the model's files are larger than {self.settings.max_bytes} bytes",
                "size_cap",
                size=total,
                files=len(model),
            )
        with self._lock:
            cached = self._cache.get(model_uri)
        if cached is not None and cached[0] == blobs:
            return cached[1]
        signed = any(b.relative == SIGNATURE_FILE for b in blobs)
        if signed and (self.settings.signing_keys or self.settings.signing_certificates):
            artifacts = self._downloaded(container, blobs, model_uri, deadline)
        else:
            files = [
                StoredFile(b.relative, b.size, partial(self._chunks, container, b, deadline)) for b in model
            ]
            manifest = hash_stored(
                files, max_bytes=self.settings.max_bytes, deadline=deadline, parallel=self.settings.parallel
            )
            artifacts = artifacts_from(
                manifest, model_uri, ArtifactSignature(status="unchecked" if signed else "absent")
            )
        with self._lock:
            self._cache[model_uri] = (blobs, artifacts)
            self._cache.move_to_end(model_uri)
            while len(self._cache) > CACHED_VERSIONS:
                self._cache.popitem(last=False)
        return artifacts

    def _container(self, datastore: Any) -> Any:
        from azure.storage.blob import ContainerClient

        account = getattr(datastore, "account_name", None)
        container = getattr(datastore, "container_name", None) or getattr(datastore, "filesystem", None)
        if not account or not container:
            kind = getattr(datastore, "type", type(datastore).__name__)
            raise ArtifactsUnavailable(f"datastore {datastore.name!r} ({kind}) is not blob storage")
        endpoint = getattr(datastore, "endpoint", None) or "core.windows.net"
        return ContainerClient(
            f"https://{account}.blob.{endpoint}", container, credential=self._credential, **self._options
        )

    @contextmanager
    def _chunks(self, container: Any, blob: Blob, at: float) -> Iterator[Iterator[bytes]]:
        """One blob's bytes as they download, on the ETag listed; checked against the blob's
        Content-MD5 when the answer carries one. Each request of it ends by ``at`` (the transport's
        deadline is per thread: set here, in the thread that reads)."""
        from azure.core import MatchConditions

        from policygate.sources.azureml.transport import deadline

        with deadline(at):
            stream = container.download_blob(
                blob.name, etag=blob.etag, match_condition=MatchConditions.IfNotModified
            )
        self.downloads += 1
        expected = getattr(getattr(stream.properties, "content_settings", None), "content_md5", None)
        try:
            with deadline(at):
                yield _md5_checked(stream.chunks(), _md5_bytes(expected), blob.name)
        finally:
            response = getattr(stream, "_response", None)  # a download stopped half-way: closed
            close = getattr(getattr(response, "http_response", response), "close", None)
            if callable(close):
                close()

    def _downloaded(
        self, container: Any, blobs: tuple[Blob, ...], model_uri: str, deadline: float
    ) -> Artifacts:
        """The files in a temporary directory (what OpenSSF model signing verifies), then hashed."""
        workdir = Path(tempfile.mkdtemp(prefix="policygate-artifacts-"))
        try:
            for blob in blobs:
                path = workdir.joinpath(*blob.relative.split("/"))
                path.parent.mkdir(parents=True, exist_ok=True)
                with self._chunks(container, blob, deadline) as chunks, path.open("wb") as fh:
                    for chunk in chunks:
                        fh.write(chunk)
                        if time.monotonic() > deadline:
                            raise ArtifactsUnavailable.of_budget(
                                BudgetExceeded("downloading the model's files took longer than the budget")
                            )
            return artifacts_of(workdir, model_uri, self.settings, deadline)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def _md5_bytes(value: Any) -> bytes | None:
    """The Content-MD5 as the SDK gives it (bytes, or base64 text); None when absent."""
    if not value:
        return None
    if isinstance(value, str):
        return base64.b64decode(value)
    return bytes(value)


def _md5_checked(chunks: Iterator[bytes], expected: bytes | None, name: str) -> Iterator[bytes]:
    md5 = hashlib.md5(usedforsecurity=False) if expected else None
    for chunk in chunks:
        if md5 is not None:
            md5.update(chunk)
        yield chunk
    if md5 is not None and md5.digest() != expected:
        raise ArtifactsUnavailable(
            f"blob {name[:200]!r} does not match its Content-MD5 "
            f"({base64.b64encode(expected or b'').decode()}): changed or damaged in transit"
        )


def _listed(container: Any, path: str) -> tuple[Blob, ...]:
    """The blobs of a folder (``prefix/``) or of one file; directory markers skipped; a name that
    would leave the download directory (``..``, empty segments) is refused."""
    folder = path if path.endswith("/") else path + "/"
    blobs: list[Blob] = []
    for item in container.list_blobs(name_starts_with=path.rstrip("/"), include=["metadata"]):
        name = str(item.name)
        if name == path.rstrip("/"):
            relative = PurePosixPath(name).name  # the model is this one file
        elif name.startswith(folder):
            relative = name[len(folder) :]
        else:
            continue  # a neighbour sharing the prefix (model/ vs model-old/)
        if name.endswith("/") or (item.metadata or {}).get("hdi_isfolder") == "true":
            continue
        parts = relative.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise ArtifactsUnavailable(f"blob {name[:200]!r} has a path that leaves the model's folder")
        modified = item.last_modified.isoformat() if item.last_modified else ""
        blobs.append(Blob(name, relative, int(item.size or 0), str(item.etag), modified))
    return tuple(sorted(blobs, key=lambda b: b.relative))
