"""The decision contract as JSON, for machines."""

from __future__ import annotations

from policygate.decisions.model import Decision


def render(decision: Decision) -> str:
    return decision.model_dump_json(indent=2)
