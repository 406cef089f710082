"""The owners report (audit.owners) as CSV: the sheet an access-review campaign imports."""

from __future__ import annotations

from policygate.audit.owners import OwnerRow, OwnersReport
from policygate.output.audit_csv import table

COLUMNS = tuple(OwnerRow.model_fields)


def render(report: OwnersReport) -> str:
    rows = (r.model_dump() for r in report.rows)
    return table(COLUMNS, ([_joined(row[c]) for c in COLUMNS] for row in rows))


def _joined(value: object) -> object:
    return " ".join(value) if isinstance(value, list) else value
