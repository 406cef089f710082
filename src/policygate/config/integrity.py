"""``POLICYGATE_ARTIFACTS__*``: whether and within what budget a model version's files are hashed."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from policygate.config.units import MIB


class ArtifactSettings(BaseModel):
    enabled: bool = Field(default=True, description="Hash the model version's files into the evidence.")
    max_bytes: int = Field(
        default=4096 * MIB,
        gt=0,
        description="Larger models are not hashed: the evidence says so (artifacts_unverified) and INT-003 "
        "denies production. 4 GiB: what the 60 s budget allows at the throughput measured on a local "
        "proxied MLflow (bench/integrity_bench.py, about 110 MiB/s), with a margin for a busier store.",
    )
    signing_keys: dict[str, Path] = Field(
        default_factory=dict,
        description="Public keys (PEM, elliptic curve) verifying OpenSSF model-signing signatures, by signer "
        'name (JSON: {"ml-platform": "/keys/ml-platform.pub"}); none: signatures are not checked.',
    )
    signing_certificates: dict[str, list[Path]] = Field(
        default_factory=dict,
        description="Certificate authorities (PEM: root and intermediates) verifying certificate-based "
        'model-signing signatures, by signer name (JSON: {"contoso-ml-ca": ["/keys/ca.pem"]}); any '
        "signing certificate they issued verifies as that signer.",
    )
    parallel: int = Field(
        default=4, ge=1, le=32, description="Files read and hashed at the same time (each as it streams)."
    )
    timeout_s: float = Field(
        default=60.0, gt=0, description="Reading and hashing them may take this long, else the gap is named."
    )

    @field_validator("signing_certificates")
    @classmethod
    def _a_chain_each(cls, value: dict[str, list[Path]]) -> dict[str, list[Path]]:
        # model-signing falls back to the operating system's roots for an empty chain: every
        # publicly issued certificate would then verify as this signer
        empty = [name for name, chain in value.items() if not chain]
        if empty:
            raise ValueError(f"no certificate authority given for signer(s) {', '.join(empty)}")
        return value
