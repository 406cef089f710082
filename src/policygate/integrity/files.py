"""A model's files in a local directory -> the ``artifacts`` evidence: the manifest, hashed within
the budget, and the signature over them. Each platform's source gets the files there its own way
(sources/mlflow_artifacts.py, sources/azureml_artifacts.py); what is recorded is decided here once."""

from __future__ import annotations

import logging
from pathlib import Path

from policygate.evidence import ArtifactFile, Artifacts
from policygate.integrity.manifest import BudgetExceeded, manifest_of
from policygate.integrity.settings import ArtifactSettings
from policygate.integrity.signature import verify_signature
from policygate.logredact import redact_url

log = logging.getLogger(__name__)
GAP = "artifacts"  # named in collection.gaps when the files could not be read


class ArtifactsUnavailable(Exception):
    """The files could not be read or hashed within the budget (the evidence names the gap)."""


def not_read(source: str, exc: ArtifactsUnavailable) -> None:
    """Say in the service log why the gap is there (the evidence only names it)."""
    log.warning("the files at %s were not read: %s", redact_url(source), exc)


def artifacts_of(root: Path, source: str, settings: ArtifactSettings, deadline: float) -> Artifacts:
    """The evidence of the files under ``root``, read from ``source`` (recorded with secrets redacted)."""
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
        signature=verify_signature(root, settings.signing_keys, settings.signing_certificates),
    )
