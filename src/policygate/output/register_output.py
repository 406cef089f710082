"""The governed register (audit.register) for people (text) and spreadsheets (csv); json is the model."""

from __future__ import annotations

from typing import Any

from policygate.audit.register import Register, RegisterRow
from policygate.output.audit_csv import table

COLUMNS = tuple(RegisterRow.model_fields)


def render_text(reg: Register) -> str:
    complete = "" if reg.complete else "  (INCOMPLETE: not every model in use could be listed)"
    lines = [
        f"register of audit run {reg.run_id} ({reg.audited_at}), "
        f"policy {reg.policy_revision or '-'}{complete}",
        f"{len(reg.rows)} model versions in use",
    ]
    for r in reg.rows:
        changed = "  OWNER CHANGED SINCE RELEASE" if r.owner_changed else ""
        released = (
            f"{str(r.outcome).upper()} {r.decided_at}  decision {r.decision_id}  requested by "
            f"{r.requested_by or '-'}  sent by {r.sent_by or '-'}"
            if r.decision_id
            else "NONE: no release decision (bypass)"
        )
        lines += [
            "",
            f"{r.model} -> {r.target} ({r.via})",
            f"  owner      {r.owner_at_release or '-'} at release; now {r.owner_now or '-'} "
            f"(directory: {r.owner_now_status}){changed}",
            f"  released   {released}",
            f"  approvals  {approvals(r) or '-'}",
            f"  withdrawn  {withdrawn(r) or '-'}{'  NO LONGER STANDS' if r.withdrawn else ''}",
            f"  waivers    {waivers(r) or '-'}",
            f"  policy     {r.policy_revision or '-'}",
            f"  lineage    run {r.run or '-'}  commit {(r.commit or '-')[:12]}  datasets "
            f"{', '.join(r.datasets) or '-'}",
            f"  change     ticket {r.ticket or '-'}  run {r.run_url or '-'}",
            f"  now        {r.audit_outcome or 'not audited'}  findings {', '.join(r.findings) or '-'}",
        ]
    return "\n".join(lines)


def approvals(r: RegisterRow) -> str:
    """by at TIME [id], each; unverified ones say so."""
    return "; ".join(
        f"{a.by} at {a.at or '?'}" + (f" [{a.id}]" if a.id else "") + ("" if a.verified else " (unverified)")
        for a in r.approvals
    )


def withdrawn(r: RegisterRow) -> str:
    return "; ".join(
        f"{w.by} {w.decision} at {w.at} [{w.id}]" + (f" of {w.withdraws}" if w.withdraws else "")
        for w in r.withdrawn
    )


def waivers(r: RegisterRow) -> str:
    return "; ".join(f"{w.rule} waived by {w.waiver} ({w.reason or 'no reason recorded'})" for w in r.waivers)


LISTS = {"approvals": approvals, "withdrawn": withdrawn, "waivers": waivers}


def _csv_value(r: RegisterRow, column: str, value: Any) -> Any:
    if column in LISTS:
        return LISTS[column](r)
    return " ".join(value) if isinstance(value, list) else value


def render_csv(reg: Register) -> str:
    return table(COLUMNS, (_csv_row(r) for r in reg.rows))


def _csv_row(r: RegisterRow) -> list[Any]:
    row = r.model_dump()
    return [_csv_value(r, c, row[c]) for c in COLUMNS]
