"""OIDC bearer tokens (Entra ID and other issuers), verified with PyJWT against the issuer's JWKS."""

from __future__ import annotations

from typing import Any

import jwt

from policygate.auth.jwks import KeySet
from policygate.auth.principal import SCOPES, Principal
from policygate.config.oidc import OidcSettings
from policygate.errors import PolicygateError


class OidcError(PolicygateError):
    pass


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


class OidcVerifier:
    def __init__(self, settings: OidcSettings, keys: KeySet | None = None) -> None:
        if not settings.enabled:
            raise ValueError("OIDC needs issuer, audience and jwks_url")
        self.settings = settings
        self.keys = keys or KeySet(
            str(settings.jwks_url),
            timeout_s=settings.jwks_timeout_s,
            min_refresh_s=settings.jwks_min_refresh_s,
        )

    def verify(self, token: str) -> Principal:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            if not isinstance(kid, str):
                raise OidcError("invalid bearer token: no key id (kid)")
            key = self.keys.key(kid)
            if key is None:
                raise OidcError("invalid bearer token: the issuer publishes no key with this kid")
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self.settings.algorithms,
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise OidcError(f"invalid bearer token: {type(exc).__name__}") from None
        identity = next(
            (
                claims[c]
                for c in self.settings.identity_claims
                if isinstance(claims.get(c), str) and claims[c]
            ),
            None,
        )
        if identity is None:
            raise OidcError("bearer token names no identity")
        return Principal(identity, self._scopes(claims), "oidc")

    def _scopes(self, claims: dict[str, Any]) -> frozenset[str]:
        """policygate scopes from ``scp``/``scope`` and ``roles``: an exact policygate scope name
        (``decide`` or ``policygate.decide``) or a name in the scope map; anything else, in any
        other spelling (``Admin``) or shape (a number), grants nothing."""
        granted = _names(claims.get("scp") or claims.get("scope")) + _names(claims.get("roles"))
        mapped = set()
        for name in granted:
            target = self.settings.scope_map.get(name) or name.removeprefix("policygate.")
            if target in SCOPES:
                mapped.add(target)
        return frozenset(mapped)


def _names(value: Any) -> list[str]:
    """A claim as a list of names: a space-separated string or a list of strings; else none."""
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []
