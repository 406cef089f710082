"""Who is calling, and what they may do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Scope = Literal["decide", "read", "approve", "delegate", "audit", "admin"]
# delegate: ask for a decision on someone else's behalf (``requested_by``), e.g. a CI identity acting
# for the person who pushed; both are recorded and separation of duties holds against both
# audit: trigger an audit run with the service's own policy and settings (an auditor's token)
SCOPES: tuple[Scope, ...] = ("decide", "read", "approve", "delegate", "audit", "admin")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``id`` is the bare identity (alice@corp, or a token's name) that
    approvals record, so separation-of-duties checks compare like with like."""

    id: str
    scopes: frozenset[str]
    kind: Literal["token", "oidc", "anonymous"]

    @property
    def label(self) -> str:
        """How decisions record the caller: kind and identity, e.g. oidc:alice@corp."""
        return self.kind if self.kind == "anonymous" else f"{self.kind}:{self.id}"

    def may(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


ANONYMOUS = Principal("anonymous", frozenset(SCOPES), "anonymous")


def parse_scopes(text: str) -> frozenset[str]:
    """``decide,read`` -> scopes; unknown names are an error, not silently dropped."""
    scopes = frozenset(s.strip() for s in text.split(",") if s.strip())
    unknown = scopes - set(SCOPES)
    if unknown or not scopes:
        raise ValueError(
            f"unknown scope(s) {sorted(unknown) or '(none given)'}; choose from {', '.join(SCOPES)}"
        )
    return scopes
