"""The model version's files: their manifest, its signature, the digests recorded before."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from policygate.evidence.fields import ONE_LINE, Part, line


class ArtifactFile(Part):
    """One file of the model version's artifacts."""

    path: str = Field(
        min_length=1,
        max_length=1024,
        pattern=ONE_LINE,
        description="Path under the model's root, /-separated.",
    )
    size: int = Field(ge=0, description="Size in bytes.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the file's bytes, hex.")


class ArtifactSignature(Part):
    """An OpenSSF model-signing signature over the artifacts, as policygate verified it."""

    status: Literal["verified", "invalid", "absent", "unchecked"] = Field(
        default="unchecked",
        description="verified (by a configured key or certificate authority), invalid (does not verify, "
        "or signs other files), absent (no signature file), unchecked (no keys configured to check it with).",
    )
    signer: str | None = line(
        256,
        "Who signed: the name of the configured key, or of the certificate authority whose chain the "
        "signing certificate verified against.",
    )
    method: Literal["key", "certificate"] | None = Field(
        default=None, description="How it verified: a public key, or a certificate chain."
    )
    certificate: str | None = line(
        1024, "The signing certificate's subject (RFC 4514), when a certificate signed."
    )
    error: str | None = line(1024, "Why it is invalid.")


class RecordedDigest(Part):
    """A manifest digest the log recorded for this version: an earlier collected allow decision's, or
    an approval's recorded through policygate."""

    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$", description="The manifest digest it recorded.")
    decision_id: str = Field(
        max_length=64, pattern=ONE_LINE, description="That decision (or approval, ``approval:...``)."
    )
    kind: Literal["decision", "approval"] = Field(
        default="decision", description="Whether a decision or an approval recorded it."
    )
    recorded_at: str | None = line(64, "When it was recorded.")


class Artifacts(Part):
    """The files behind the model version, hashed when the evidence was collected."""

    digest: str = Field(
        pattern=r"^sha256:[0-9a-f]{64}$",
        description="Manifest digest: SHA-256 of the canonical JSON of the sorted [{path, sha256, size}].",
    )
    files: list[ArtifactFile] = Field(
        default_factory=list, description="Each file (the signature file excepted)."
    )
    size: int = Field(ge=0, description="Bytes in all.")
    source: str | None = line(2048, "Where the artifacts were read (no credentials).")
    signature: ArtifactSignature = Field(default_factory=ArtifactSignature)
    recorded: list[RecordedDigest] = Field(
        default_factory=list,
        description="Manifest digests earlier collected decisions of this version recorded (newest first).",
    )


class ArtifactsUnverified(Part):
    """The model version's files that could not be hashed, so nothing about them is verified (INT-003):
    why, and how much was read before it stopped. No manifest is recorded for them (``artifacts`` is
    null and ``collection.gaps`` names ``artifacts``)."""

    reason: Literal["size_cap", "time_budget", "store"] = Field(
        description="size_cap: larger than POLICYGATE_ARTIFACTS__MAX_BYTES; time_budget: not read and "
        "hashed within POLICYGATE_ARTIFACTS__TIMEOUT_S; store: the store refused or failed (no access, "
        "an unsupported location, no files)."
    )
    detail: str = Field(max_length=1024, pattern=ONE_LINE, description="What happened, in words.")
    source: str | None = line(2048, "Where the files were read (no credentials).")
    size: int | None = Field(
        default=None, ge=0, description="Bytes in all, as the store listed them; null when not listed."
    )
    files: int | None = Field(default=None, ge=0, description="Files listed; null when not listed.")
    bytes_read: int = Field(default=0, ge=0, description="Bytes read and hashed before it stopped.")
    files_read: int = Field(default=0, ge=0, description="Files read and hashed in full before it stopped.")
    max_bytes: int | None = Field(default=None, ge=0, description="The size cap in force.")
    timeout_s: float | None = Field(default=None, ge=0, description="The time budget in force, seconds.")
