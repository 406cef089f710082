"""An audit run as JSON: the summary, then the run as recorded (without its evidence documents)."""

from __future__ import annotations

import json

from policygate.audit.findings import AuditRun


def render(run: AuditRun) -> str:
    return json.dumps({**run.summary(), **run.model_dump(mode="json", exclude={"documents"})}, indent=2)
