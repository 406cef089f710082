"""The files behind an MLflow model version (its source: a LoggedModel ``models:/m-...`` or a run's
``runs:/.../model``), downloaded to a temporary directory and hashed into a manifest within the
budget of POLICYGATE_ARTIFACTS__*. Nothing is cached across collections: MLflow's artifact listing
gives sizes but no ETag or modification time, and a file replaced by one of the same size must still
be noticed (INT-002)."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from policygate.evidence import Artifacts
from policygate.integrity.files import ArtifactsUnavailable, artifacts_of
from policygate.integrity.settings import ArtifactSettings
from policygate.logredact import redact_url


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
        return artifacts_of(local if local.is_dir() else local.parent, source, settings, deadline)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
