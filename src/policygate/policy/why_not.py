"""Why a rule did not fire on a document: the first of its conditions that failed, from OPA's own
trace (``opa eval --explain fails`` on the copy the OPA serves), for "does not fire on its example"."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from policygate.engine.errors import EngineError
from policygate.engine.runner import run_opa

TIMEOUT_S = 30.0


def rule_end(file: str, row: int) -> int:
    """The last line of the rule starting at ``row`` (its closing brace at the start of a line)."""
    try:
        lines = Path(file).read_text(encoding="utf-8").splitlines()
    except OSError:
        return row
    for n in range(row, len(lines) + 1):
        if lines[n - 1].rstrip() == "}":
            return n
    return row


def first_failed(
    binary: str, loaded: Path, file: str, row: int, doc: dict[str, Any], local: Callable[[str], str]
) -> str:
    """``" (first condition that failed: FILE:LINE `text`)"``, or "" when the trace does not say."""
    end = rule_end(file, row)
    args = ["eval", "--format", "json", "--explain", "fails", "--data", str(loaded), "--stdin-input"]
    try:
        proc = run_opa(
            binary, [*args, "data.policygate.violation"], timeout_s=TIMEOUT_S, stdin=json.dumps(doc)
        )
        events = json.loads(proc.stdout).get("explanation") or []
    except (EngineError, ValueError, AttributeError):
        return ""
    lines = Path(file).read_text(encoding="utf-8").splitlines()
    for event in events:
        loc = (event.get("Location") or {}) if isinstance(event, dict) else {}
        if event.get("Op") != "Fail" or local(str(loc.get("file", ""))) != file:
            continue
        line = int(loc.get("row", 0) or 0)
        if row < line <= end:
            return f" (first condition that failed: {file}:{line} `{lines[line - 1].strip()}`)"
    # not entered at all: OPA's rule index ruled it out on an equality with the input
    for line in range(row + 1, end):
        text = lines[line - 1].strip()
        if "input." in text and "==" in text and not text.startswith("#"):
            return f" (first condition that failed: {file}:{line} `{text}`, so OPA never entered the rule)"
    return ""
