"""An audit run for GitHub Actions: an annotation per finding, then a Markdown job summary."""

from __future__ import annotations

from policygate.audit.findings import KINDS, AuditRun
from policygate.output.github_output import _cell, _escape_data, _escape_property

_LEVEL = {
    "drift": "error",
    "bypass": "error",
    "unreachable": "error",
    "missed-event": "warning",
    "orphaned": "error",
    "review-overdue": "warning",
    "retired-in-use": "error",
    "nhi-risk": "error",
}


def render(run: AuditRun) -> str:
    lines = [
        f"::{_LEVEL[f.kind]} title={_escape_property(f'policygate audit {f.kind} {f.model}')}::"
        f"{_escape_data(f'{f.target} via {f.via}: {f.message}')}"
        for f in run.findings
    ]
    lines += [f"::error title=policygate audit::{_escape_data(e)}" for e in run.errors]
    counts = run.counts()
    lines += [
        "",
        f"### policygate audit: {run.summary()['status']}",
        "",
        f"{len(run.models)} models in use · policy `{run.policy_revision or '-'}` · run `{run.run_id}` · "
        + " · ".join(f"{k} {counts[k]}" for k in KINDS),
        "",
    ]
    if run.findings:
        lines += ["| finding | model | target | via | reasons | what |", "|---|---|---|---|---|---|"]
        lines += [
            f"| {f.kind} | `{_cell(f.model)}` | {f.target} | {_cell(f.via)} | {' '.join(f.reasons)} "
            f"| {_cell(f.message)} |"
            for f in run.findings
        ]
    return "\n".join(lines)
