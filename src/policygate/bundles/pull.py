"""``POLICYGATE_BUNDLE_PULL__*``: serve's own OPA pulls signed bundles from an HTTP bundle service
instead of loading the policy directory (docs/deploy.md). The bundles were checked when they were
built (``policygate bundle build``); OPA verifies each one's signature before it activates it and
keeps the last good one when a new one is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr

from policygate.engine.errors import BUNDLE


class BundlePull(BaseModel):
    url: str | None = Field(
        default=None,
        description="The bundle service (e.g. https://policygate.corp/v1, or a blob container); unset: the "
        "managed OPA loads the policy directory.",
    )
    resource: str = Field(
        default="bundles/policygate.tar.gz", description="The bundle's path at the service."
    )
    verification_key: Path | None = Field(
        default=None, description="Public key (PEM) verifying the bundles' signatures (required with url)."
    )
    verification_alg: str = Field(default="RS256", description="The signatures' algorithm.")
    token: SecretStr | None = Field(default=None, description="Bearer token for the bundle service, if any.")
    min_delay_s: int = Field(default=10, ge=1, description="Poll at least this far apart ...")
    max_delay_s: int = Field(default=30, ge=1, description="... and at most this far apart.")

    def opa_config(self, token_path: Path | None) -> dict[str, Any]:
        """OPA's configuration for pulling and verifying the bundle (and reporting its status)."""
        if not self.url or self.verification_key is None:
            raise ValueError("POLICYGATE_BUNDLE_PULL__URL needs POLICYGATE_BUNDLE_PULL__VERIFICATION_KEY")
        service: dict[str, Any] = {"url": self.url}
        if token_path is not None:
            service["credentials"] = {"bearer": {"token_path": str(token_path)}}
        return {
            "services": {"bundles": service},
            "bundles": {
                BUNDLE: {
                    "service": "bundles",
                    "resource": self.resource,
                    "persist": False,
                    "polling": {
                        "min_delay_seconds": self.min_delay_s,
                        "max_delay_seconds": max(self.min_delay_s, self.max_delay_s),
                    },
                    "signing": {"keyid": "policygate"},
                }
            },
            "keys": {
                "policygate": {
                    "algorithm": self.verification_alg,
                    "key": self.verification_key.read_text(encoding="utf-8"),
                }
            },
            "status": {"prometheus": True},
        }
