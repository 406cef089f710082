"""The decision contract as JSON, for machines."""

from __future__ import annotations

import json

from policygate.decisions.decision import Decision


def render(decision: Decision) -> str:
    return decision.model_dump_json(indent=2)


def render_many(decisions: list[tuple[str, Decision]]) -> str:
    """A JSON array: each decision with the ``file`` it was made on."""
    return json.dumps([{"file": f, **d.model_dump(mode="json")} for f, d in decisions], indent=2)
