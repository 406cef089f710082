"""A model's files -> the ``artifacts`` evidence (the manifest, and the signature over the files), or,
when they could not be hashed, the ``artifacts_unverified`` evidence saying why and how much was read
(INT-003). Each platform's source gets the files its own way (sources/mlflow/artifacts.py,
sources/azureml/artifacts.py); what is recorded is decided here once."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from policygate.config.integrity import ArtifactSettings
from policygate.errors import PolicygateError
from policygate.evidence import ArtifactFile, Artifacts, ArtifactSignature, ArtifactsUnverified
from policygate.integrity.manifest import BudgetExceeded, Manifest, manifest_of
from policygate.integrity.signature import verify_signature
from policygate.logredact import redact, redact_url

log = logging.getLogger(__name__)
GAP = "artifacts"  # named in collection.gaps when the files could not be read
Reason = Literal["size_cap", "time_budget", "store"]


class ArtifactsUnavailable(PolicygateError):
    """The files could not be read or hashed within the budget: why (``reason``), and how much was
    listed and read before it stopped (the evidence records both, INT-003 names them)."""

    def __init__(
        self,
        detail: str,
        reason: Reason = "store",
        *,
        size: int | None = None,
        files: int | None = None,
        bytes_read: int = 0,
        files_read: int = 0,
    ) -> None:
        super().__init__(detail)
        self.reason: Reason = reason
        self.size = size
        self.files = files
        self.bytes_read = bytes_read
        self.files_read = files_read

    @classmethod
    def of_budget(
        cls, exc: BudgetExceeded, size: int | None = None, files: int | None = None
    ) -> ArtifactsUnavailable:
        reason: Reason = "size_cap" if exc.reason == "size_cap" else "time_budget"
        return cls(
            str(exc), reason, size=size, files=files, bytes_read=exc.bytes_read, files_read=exc.files_read
        )


def not_read(source: str, exc: ArtifactsUnavailable) -> None:
    """Say in the service log why the gap is there (the evidence says it too)."""
    log.warning("the files at %s were not read (%s): %s", redact_url(source), exc.reason, redact(str(exc)))


def unverified(source: str, exc: ArtifactsUnavailable, settings: ArtifactSettings) -> ArtifactsUnverified:
    """The evidence of files that could not be hashed, logged once."""
    not_read(source, exc)
    return ArtifactsUnverified(
        reason=exc.reason,
        detail=redact(" ".join(str(exc).split()))[:1024] or exc.reason,
        source=redact_url(source)[:2048],
        size=exc.size,
        files=exc.files,
        bytes_read=exc.bytes_read,
        files_read=exc.files_read,
        max_bytes=settings.max_bytes,
        timeout_s=float(settings.timeout_s),
    )


def artifacts_from(manifest: Manifest, source: str, signature: ArtifactSignature) -> Artifacts:
    """The evidence of hashed files (``source`` recorded with secrets redacted)."""
    if not manifest.files:
        raise ArtifactsUnavailable(f"no files at {redact_url(source)}")
    return Artifacts(
        digest=manifest.digest,
        files=[ArtifactFile(path=f.path, size=f.size, sha256=f.sha256) for f in manifest.files],
        size=manifest.size,
        source=redact_url(source),
        signature=signature,
    )


def artifacts_of(root: Path, source: str, settings: ArtifactSettings, deadline: float) -> Artifacts:
    """The evidence of the files under ``root``, read from ``source``."""
    try:
        manifest = manifest_of(root, max_bytes=settings.max_bytes, deadline=deadline)
    except BudgetExceeded as exc:
        raise ArtifactsUnavailable.of_budget(exc) from None
    except (ValueError, OSError) as exc:
        raise ArtifactsUnavailable(str(exc)) from None
    return artifacts_from(
        manifest, source, verify_signature(root, settings.signing_keys, settings.signing_certificates)
    )
