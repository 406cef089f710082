"""The explanation of a decision (``evaluate --explain``) as text for a person who does not read Rego."""

from __future__ import annotations

import json
from typing import Any

from policygate.policy.explain import Explanation


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(explanation: Explanation) -> str:
    lines = ["", "WHY", f"  {explanation.summary}"]
    labels = {"deny": "DENY", "warn": "WARN", "dryrun": "DRY-RUN", "error": "ERROR"}
    for r in explanation.reasons:
        head = f"{labels[r.kind]} {r.id}"
        if r.title:
            head += f" — {r.title}"
        mode = r.mode + (f", waived by {r.waiver}" if r.waiver else "")
        lines += ["", f"  {head}  [severity {r.severity}; mode {mode}]"]
        if r.description:
            lines.append(f"    Rule: {r.description}")
        lines.append(f"    Finding: {r.message}")
        if r.fields:
            lines.append("    Evidence it read:")
            width = max(len(f.path) for f in r.fields)
            for f in r.fields:
                gap = "  [reported missing by the sources]" if f.gap else ""
                if isinstance(f.value, list) and f.value and any(isinstance(v, dict) for v in f.value):
                    lines.append(f"      {f.path:<{width}} = {len(f.value)} item(s):{gap}")
                    lines += [f"      {'':<{width}}   - {_short(v)}" for v in f.value[:20]]
                    continue
                value = _short(f.value) if f.present else "(missing)"
                lines.append(f"      {f.path:<{width}} = {value}{gap}")
        if r.conditions:
            where = f" ({r.rule_location})" if r.rule_location else ""
            lines.append(f"    Conditions that held, from OPA's trace{where}:")
            for c in r.conditions:
                lines.append(f"      {c.expression}")
                for name, value in c.bindings.items():
                    lines.append(f"          {name} = {_short(value)}")
        if r.facts:
            lines.append("    Policy facts used:")
            for name, value in r.facts.items():
                lines.append(f"      {name} = {_short(value)}")
    for note in explanation.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)
