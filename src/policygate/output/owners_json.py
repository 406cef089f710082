"""The owners report (audit.owners) as JSON: the model itself, as GET /v1/reports/owners answers it."""

from __future__ import annotations

import json

from policygate.audit.owners import OwnersReport


def render(report: OwnersReport) -> str:
    return json.dumps(report.model_dump(mode="json"), indent=2)
