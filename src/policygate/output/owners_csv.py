"""The owners report (audit.owners) as CSV: the sheet an access-review campaign imports."""

from __future__ import annotations

import csv
import io

from policygate.audit.owners import OwnerRow, OwnersReport
from policygate.output.audit_csv import _cell

COLUMNS = tuple(OwnerRow.model_fields)


def render(report: OwnersReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in report.rows:
        row = r.model_dump()
        writer.writerow([_cell(" ".join(v) if isinstance(v, list) else v) for v in (row[c] for c in COLUMNS)])
    return out.getvalue().rstrip("\n")
