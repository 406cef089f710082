"""One way to write times: RFC 3339 in UTC with a Z."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
