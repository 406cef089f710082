"""Audit findings as CSV, one row per finding (spreadsheets, ticket imports)."""

from __future__ import annotations

import csv
import io

from policygate.audit.findings import AuditRun

COLUMNS = ("run_id", "kind", "model", "platform", "name", "version", "target", "via", "reasons", "severity",
           "decision_id", "message")  # fmt: skip


def render(run: AuditRun) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for f in run.findings:
        row = {**f.model_dump(), "run_id": run.run_id, "reasons": " ".join(f.reasons)}
        writer.writerow([_cell(row.get(c)) for c in COLUMNS])
    return out.getvalue().rstrip("\n")


def _cell(value: object) -> str:
    """No formula injection: a spreadsheet must never run a model name."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
