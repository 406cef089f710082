"""The files behind an MLflow model version (its source: a LoggedModel ``models:/m-...`` or a run's
``runs:/.../model``), downloaded to a temporary directory and hashed into a manifest within the
budget of POLICYGATE_ARTIFACTS__*. Nothing is cached across collections: artifacts can change, and
noticing that is the point (INT-002)."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from policygate.evidence import ArtifactFile, Artifacts
from policygate.integrity.manifest import BudgetExceeded, manifest_of
from policygate.integrity.settings import ArtifactSettings
from policygate.integrity.signature import verify_signature
from policygate.logredact import redact_url

GAP = "artifacts"


class ArtifactsUnavailable(Exception):
    """The files could not be read or hashed within the budget (the evidence names the gap)."""


def read_artifacts(source: str, tracking_uri: str, settings: ArtifactSettings) -> Artifacts:
    import mlflow.artifacts

    deadline = time.monotonic() + settings.timeout_s
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
                f"cannot download {redact_url(source)}: {type(exc).__name__}"
            ) from None
        if time.monotonic() > deadline:
            raise ArtifactsUnavailable(f"downloading took longer than {settings.timeout_s:g} s")
        root = local if local.is_dir() else local.parent
        try:
            manifest = manifest_of(root, max_bytes=settings.max_bytes, deadline=deadline)
        except (BudgetExceeded, ValueError, OSError) as exc:
            raise ArtifactsUnavailable(str(exc)) from None
        if not manifest.files:
            raise ArtifactsUnavailable(f"no files at {redact_url(source)}")
        return Artifacts(
            digest=manifest.digest,
            files=[ArtifactFile(path=f.path, size=f.size, sha256=f.sha256) for f in manifest.files],
            size=manifest.size,
            source=redact_url(source),
            signature=verify_signature(root, settings.signing_keys),
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
