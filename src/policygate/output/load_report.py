"""``policygate policy check`` as text: ok with what was checked, or each problem with file and line."""

from __future__ import annotations

from policygate.policy.report import LoadReport


def render(report: LoadReport) -> str:
    if report.ok:
        return (
            f"ok: {report.policy_dir}: {report.files} files, {len(report.rules)} rules, each denies its "
            f"example in {report.examples_dir}; revision {report.revision}"
        )
    lines = [str(e) for e in report.errors]
    lines.append(f"{len(report.errors)} error(s): {report.policy_dir} is refused")
    return "\n".join(lines)
