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


def iso(value: datetime) -> str:
    """``value`` as now_iso writes times."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_iso(text: str | None) -> datetime | None:
    """An ISO-8601 time (naive: UTC); None when absent or unreadable."""
    if not text:
        return None
    try:
        return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None
