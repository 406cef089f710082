"""The rule catalogue, read from the policies' own ``# METADATA`` annotations with ``opa inspect -a``."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policygate.engine.opa import EngineError


@dataclass(frozen=True)
class RuleInfo:
    id: str
    title: str
    description: str
    severity: str
    controls: list[str] = field(default_factory=list)
    location: str = ""


def load_catalogue(binary: str, policy_dir: Path) -> list[RuleInfo]:
    """Every annotated rule with a ``custom.id``, sorted by id."""
    try:
        proc = subprocess.run(
            [binary, "inspect", "-a", "--format", "json", str(policy_dir)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EngineError("policy_error", f"cannot inspect policies in {policy_dir}: {exc}") from exc
    if proc.returncode != 0:
        raise EngineError("policy_error", f"opa inspect {policy_dir} failed: {proc.stderr.strip()[:500]}")
    rules: dict[str, RuleInfo] = {}
    for entry in json.loads(proc.stdout).get("annotations") or []:
        ann: dict[str, Any] = entry.get("annotations") or {}
        custom = ann.get("custom") or {}
        rule_id = custom.get("id")
        if not rule_id or rule_id in rules:
            continue
        loc = entry.get("location") or {}
        rules[rule_id] = RuleInfo(
            id=rule_id,
            title=ann.get("title", ""),
            description=" ".join(str(ann.get("description", "")).split()),
            severity=str(custom.get("severity", "")),
            controls=list(custom.get("controls") or []),
            location=f"{loc.get('file', '')}:{loc.get('row', '')}",
        )
    return [rules[k] for k in sorted(rules)]
