"""One place that turns a bearer token into a Principal: API tokens first, then OIDC JWTs."""

from __future__ import annotations

import logging

from policygate.auth.oidc import OidcError, OidcSettings, OidcVerifier, looks_like_jwt
from policygate.auth.principal import Principal
from policygate.auth.ratelimit import RateLimiter
from policygate.auth.tokens import TokenStore, split_token
from policygate.decisions.log import DecisionLog

log = logging.getLogger(__name__)


class Authenticator:
    def __init__(
        self,
        log_: DecisionLog,
        *,
        required: bool,
        oidc: OidcSettings | None = None,
        rate_per_minute: int = 600,
        failures_per_minute: int = 60,
    ) -> None:
        self.tokens = TokenStore(log_)
        self.required = required
        self.oidc = OidcVerifier(oidc) if oidc is not None and oidc.enabled else None
        self.limiter = RateLimiter(rate_per_minute)
        # Failed authentications per client address: guessing tokens, or a flood of forged JWTs.
        self.failures = RateLimiter(failures_per_minute)

    def cached(self, bearer: str) -> tuple[bool, Principal | None]:
        """An API token's answer from the last 5 s without touching the database: (known, principal).
        OIDC tokens are never answered here (their signature and expiry are checked each time):
        only API tokens are cached."""
        return self.tokens.cached(bearer)

    def verify(self, bearer: str) -> Principal | None:
        """The caller, or None for a token that is unknown, revoked, expired or forged."""
        if split_token(bearer) is not None:
            return self.tokens.verify(bearer)
        if self.oidc is not None and looks_like_jwt(bearer):
            try:
                return self.oidc.verify(bearer)
            except OidcError as exc:
                log.info("refused bearer token: %s", exc)  # the reason, never the token
                return None
        return None

    def close(self) -> None:
        if self.oidc is not None:
            self.oidc.keys.close()
