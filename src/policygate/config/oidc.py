"""OIDC settings (POLICYGATE_OIDC__*): here, not in policygate.auth, so reading the configuration does
not load the JWT libraries (policygate.auth.oidc verifies tokens)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class OidcSettings(BaseModel):
    issuer: str | None = Field(
        default=None, description="Expected `iss`, e.g. https://login.microsoftonline.com/T/v2.0"
    )
    audience: str | None = Field(default=None, description="Expected `aud` (the API's application id URI).")
    jwks_url: str | None = Field(default=None, description="Where the signing keys are published.")
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    scope_map: dict[str, str] = Field(
        default_factory=dict,
        description='Token scope/app-role -> policygate scope, e.g. {"PolicyGate.Approve": "approve"}.',
    )
    identity_claims: list[str] = Field(
        default_factory=lambda: ["preferred_username", "upn", "email", "appid", "azp", "sub"]
    )
    jwks_timeout_s: float = Field(default=3.0, gt=0, description="Timeout of one JWKS fetch.")
    jwks_min_refresh_s: float = Field(
        default=30.0,
        ge=0,
        description="A token whose kid is unknown refreshes the JWKS at most this often (one fetch at "
        "a time; no request waits for it).",
    )

    @property
    def enabled(self) -> bool:
        return bool(self.issuer and self.audience and self.jwks_url)
