"""One way to write times: RFC 3339 in UTC with a Z."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def as_utc(value: datetime | None) -> datetime | None:
    """Compare instants, not wall clocks: naive times are UTC, aware ones are converted to UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
