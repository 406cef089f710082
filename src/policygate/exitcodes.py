"""The CLI's exit codes by outcome: 0 allow, 1 deny, 2 could not decide (a module of its own: every
command needs them before it imports anything heavy)."""

from __future__ import annotations

EXIT_CODES: dict[str, int] = {"allow": 0, "deny": 1, "error": 2}
