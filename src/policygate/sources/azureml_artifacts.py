"""The files behind an Azure ML model version: its ``modelUri``
(``azureml://.../datastores/NAME/paths/PREFIX``), the datastore's storage account and container
(``datastores.get``, without secrets: policygate reads the blobs with its own identity, which needs
*Storage Blob Data Reader* on the account), then the blobs under the prefix, listed, downloaded
streaming into a temporary directory and hashed within the budget of POLICYGATE_ARTIFACTS__*.

The listing gives each blob's ETag, size and last-modified time; when all of them are what the
previous read of the same version saw, its result is used again without downloading (a blob's ETag
changes with every write, so a replaced file is never missed). Each download is conditional on the
ETag listed (``If-Match``): a blob replaced between listing and download fails the read (a named gap),
never mixes two versions of the files. Registry models' files are not read yet (a named gap).
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from policygate.evidence import Artifacts
from policygate.integrity.files import ArtifactsUnavailable, artifacts_of
from policygate.integrity.manifest import BudgetExceeded
from policygate.integrity.settings import ArtifactSettings
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
        total = sum(b.size for b in blobs)
        if total > self.settings.max_bytes:
            raise ArtifactsUnavailable(f"the model's files are larger than {self.settings.max_bytes} bytes")
        with self._lock:
            cached = self._cache.get(model_uri)
        if cached is not None and cached[0] == blobs:
            return cached[1]
        workdir = Path(tempfile.mkdtemp(prefix="policygate-artifacts-"))
        try:
            for blob in blobs:
                self._download(container, blob, workdir, deadline)
            artifacts = artifacts_of(workdir, model_uri, self.settings, deadline)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
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

    def _download(self, container: Any, blob: Blob, into: Path, deadline: float) -> None:
        from azure.core import MatchConditions

        path = into.joinpath(*blob.relative.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        stream = container.download_blob(
            blob.name, etag=blob.etag, match_condition=MatchConditions.IfNotModified
        )
        self.downloads += 1
        with path.open("wb") as fh:
            for chunk in stream.chunks():
                fh.write(chunk)
                if time.monotonic() > deadline:
                    raise BudgetExceeded("downloading the model's files took longer than the budget")


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
