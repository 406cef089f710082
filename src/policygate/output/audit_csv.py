"""Audit findings as CSV, one row per finding (spreadsheets, ticket imports)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from policygate.audit.findings import AuditRun

COLUMNS = ("run_id", "kind", "model", "platform", "name", "version", "target", "via", "reasons", "severity",
           "decision_id", "message")  # fmt: skip


def render(run: AuditRun) -> str:
    rows = ({**f.model_dump(), "run_id": run.run_id, "reasons": " ".join(f.reasons)} for f in run.findings)
    return table(COLUMNS, ([row.get(c) for c in COLUMNS] for row in rows))


def table(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A header and the rows, every cell safe for a spreadsheet: the one CSV writer of the reports."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return out.getvalue().rstrip("\n")


def _cell(value: object) -> str:
    """No formula injection: a spreadsheet must never run a model name."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
