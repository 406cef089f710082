"""``policygate replay`` as text: what changes, by direction and by rule, then each changed decision."""

from __future__ import annotations

from policygate.policy.replay import ReplayReport


def render(report: ReplayReport) -> str:
    scope = f"since {report.since}" if report.since else "all recorded"
    scope += f", model {report.model}" if report.model else ", all models"
    lines = [
        f"replay of recorded decisions ({scope}) against {report.candidate}",
        f"  candidate policy {report.candidate_revision}",
        f"  replayed {report.replayed} decision(s); {report.replayed - report.changed} unchanged, "
        f"{report.changed} changed",
    ]
    if report.skipped_errors or report.skipped_incomplete:
        lines.append(
            f"  skipped {report.skipped_errors} error decision(s) and {report.skipped_incomplete} without "
            "complete evidence (partial evidence, no policy outcome to compare)"
        )
    if report.changes:
        lines.append("  by direction:")
        lines += [f"    {d:<44} {n}" for d, n in report.directions().items()]
        for label, attr in (
            ("reasons added", "reasons_added"),
            ("reasons removed", "reasons_removed"),
            ("warnings added", "warnings_added"),
            ("warnings removed", "warnings_removed"),
            ("dry-run added", "dryrun_added"),
            ("dry-run removed", "dryrun_removed"),
        ):
            tally = report.tally(attr)
            if tally:
                lines.append(f"  {label}: " + ", ".join(f"{k} x{n}" for k, n in tally.items()))
        lines.append("changed decisions:")
        for c in report.changes:
            deltas = [f"+{i}" for i in c.reasons_added] + [f"-{i}" for i in c.reasons_removed]
            deltas += [f"+warn:{i}" for i in c.warnings_added] + [f"-warn:{i}" for i in c.warnings_removed]
            deltas += [f"+dry:{i}" for i in c.dryrun_added] + [f"-dry:{i}" for i in c.dryrun_removed]
            lines.append(
                f"  {c.decision_id}  {c.recorded_at or '-'}  {c.model or '?'} -> {c.target or '?'}  "
                f"{c.old_outcome} -> {c.new_outcome}  {' '.join(deltas)}".rstrip()
            )
            if c.error:
                lines.append(f"      candidate error: {c.error}")
    if len(report.recorded_revisions) > 1:
        lines.append(
            f"note: the recorded decisions were made under {len(report.recorded_revisions)} "
            "policy revisions; a change may come from an earlier revision, not the candidate alone"
        )
    lines.append(f"{report.elapsed_s:.2f} s, {report.rate:.0f} decisions/s")
    lines.append(
        "RESULT: "
        + {
            0: "no decision would change",
            1: "decisions would change",
            3: "only warnings or dry-run findings would change",
        }[report.exit_code]
    )
    return "\n".join(lines)
