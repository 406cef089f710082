"""``POLICYGATE_ARTIFACTS__*``: whether and within what budget a model version's files are hashed."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from policygate.config_units import MIB


class ArtifactSettings(BaseModel):
    enabled: bool = Field(default=True, description="Hash the model version's files into the evidence.")
    max_bytes: int = Field(
        default=1024 * MIB, gt=0, description="Larger models are not hashed: the evidence names the gap."
    )
    signing_keys: dict[str, Path] = Field(
        default_factory=dict,
        description="Public keys (PEM, elliptic curve) verifying OpenSSF model-signing signatures, by signer "
        'name (JSON: {"ml-platform": "/keys/ml-platform.pub"}); none: signatures are not checked.',
    )
    timeout_s: float = Field(
        default=60.0, gt=0, description="Reading and hashing them may take this long, else the gap is named."
    )
