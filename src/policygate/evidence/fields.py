"""What every part of the evidence document shares: strict parts, the stages, bounded text."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Stage = Literal["development", "staging", "production"]
STAGES: tuple[Stage, ...] = ("development", "staging", "production")


# One line of text: no control characters (no newline to forge a log line, no NUL, no ANSI escape).
ONE_LINE = r"^[^\x00-\x1f\x7f]*$"
# Text that may span lines (a comment): tabs and line breaks, no other control character.
TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


def line(max_length: int, description: str) -> Any:
    """A caller-written free-text field: optional, capped, one line."""
    return Field(default=None, max_length=max_length, pattern=ONE_LINE, description=description)


class Part(BaseModel):
    # strict: a 0 is not a false, a number is not a string; evidence says exactly what it means
    model_config = ConfigDict(extra="forbid", strict=True)
