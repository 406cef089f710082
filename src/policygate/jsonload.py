"""JSON as policygate reads it from callers: a key given twice in one object is refused.

Python's parser keeps the last of two equal keys, OPA's and other readers may keep the first: a
document that means two things depending on who reads it is not evidence.
"""

from __future__ import annotations

import json
from typing import Any

from policygate.errors import InputError


class DuplicateKeyError(InputError):
    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key[:80]!r} in a JSON object")
        self.key = key


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)  # built in C; a duplicate shows as fewer keys than pairs
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKeyError(key)
            seen.add(key)
    return found


def loads(data: str | bytes) -> Any:
    """``json.loads``, refusing duplicate keys (DuplicateKeyError, a ValueError)."""
    return json.loads(data, object_pairs_hook=_unique)
