"""``POLICYGATE_TAGS__*``: the platform tag names ownership and approvals are read from (every
organisation names its tags differently; the defaults are documented in docs/sources.md)."""

from __future__ import annotations

from pydantic import BaseModel


class TagMapping(BaseModel):
    owner: str = "owner"
    team: str = "team"
    use_case: str = "use_case"
    risk_tier: str = "risk_tier"
    approvals: str = "approvals"
