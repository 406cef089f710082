"""Times as people type them: RFC 3339 instants and short durations (30d, 12h, 2w)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from policygate.errors import InputError

MAX_WAIVER_DAYS = 365  # a waiver expires at most this far ahead (policy.waivers)

_DURATION = re.compile(r"(?P<n>[0-9]{1,6})\s*(?P<unit>[smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# OPA's time.parse_rfc3339_ns counts nanoseconds in an int64: it overflows in April 2262.
OPA_TIME_LIMIT = datetime(2262, 1, 1, tzinfo=UTC)


class TimeSpecError(InputError):
    """A time or duration that does not parse; the message says what is accepted."""


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` -> timedelta."""
    m = _DURATION.fullmatch((text or "").strip().lower())
    if not m:
        raise TimeSpecError(f"invalid duration {text!r}: expected a number and a unit, e.g. 30d, 12h, 2w")
    return timedelta(**{_UNITS[m["unit"]]: int(m["n"])})


def parse_instant(text: str) -> datetime:
    """An RFC 3339 timestamp with a zone (Z or an offset), as UTC."""
    raw = (text or "").strip()
    try:
        value = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise TimeSpecError(
            f"invalid time {text!r}: expected RFC 3339, e.g. 2026-12-31T23:59:59Z, or a duration like 30d"
        ) from None
    if "T" not in raw.upper() or value.tzinfo is None:
        raise TimeSpecError(f"time {text!r} has no time of day or zone: write e.g. 2026-12-31T23:59:59Z")
    return value.astimezone(UTC)


def instant_or_duration(text: str, now: datetime, *, future: bool) -> datetime:
    """An RFC 3339 instant, or a duration from ``now`` (forward when ``future``, else back)."""
    if _DURATION.fullmatch((text or "").strip().lower()):
        delta = parse_duration(text)
        try:
            return now + delta if future else now - delta
        except OverflowError:
            raise TimeSpecError(f"duration {text!r} is out of range") from None
    return parse_instant(text)


def rfc3339(value: datetime) -> str:
    """UTC, second precision, with a Z: the form OPA's time.parse_rfc3339_ns reads."""
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
