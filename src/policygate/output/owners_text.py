"""The owners report (audit.owners) for people: one block per model in use."""

from __future__ import annotations

from policygate.audit.owners import OwnersReport


def render(report: OwnersReport) -> str:
    lines = [
        f"owners of audit run {report.run_id} ({report.audited_at}), directory {report.directory or 'none'}",
        f"{len(report.rows)} models in use",
    ]
    for r in report.rows:
        due = r.next_review_due or "never reviewed"
        overdue = "  OVERDUE" if r.review_overdue else ""
        lines += [
            "",
            f"{r.model} -> {r.target} ({r.via})",
            f"  owner      {r.owner or '-'} ({r.owner_status})  risk tier {r.risk_tier or '-'}",
            f"  review     last {r.last_review or '-'} by {r.last_reviewed_by or '-'}; "
            f"next due {due}{overdue}",
            f"  approvers  {', '.join(r.counting_approvers) or '-'} (counting)",
            f"  identity   {r.deployment_identity or '-'} ({r.deployment_identity_status or 'none'})",
            f"  findings   {', '.join(r.findings) or '-'}",
        ]
    return "\n".join(lines)
