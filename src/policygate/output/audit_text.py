"""An audit run for people: what was audited, then each finding with what to do."""

from __future__ import annotations

from policygate.audit.findings import KINDS, AuditRun

WHAT_TO_DO = {
    "drift": "the model in use no longer passes the policy: fix the evidence or withdraw it",
    "bypass": "it serves a target without an allow release decision for this evidence: run "
    "`policygate check` on it, or withdraw it",
    "missed-event": "the webhook path did not see this alias change: check the registry webhook",
    "unreachable": "it could not be audited: the run is incomplete (exit 2)",
    "orphaned": "its owner is not an active person in the directory: name an accountable owner",
    "review-overdue": "its owner has not re-confirmed it within owner_review_days: `policygate review` it",
    "retired-in-use": "a retired version still serves: move the alias or deployment off it",
    "nhi-risk": "the deployment's identity has no active owner or holds long-lived secrets: fix it",
}


def render(run: AuditRun) -> str:
    summary = run.summary()
    lines = [
        f"audit {run.run_id}: {summary['status']} ({run.started_at}, {run.duration_s or 0:g} s, "
        f"policy {run.policy_revision or '-'})",
        f"  {summary['models_audited']} models in use audited ({summary['collected']} collected, "
        f"{summary['reused']} unchanged since the last run), {run.calls} platform calls",
    ]
    lines += [f"  could not list: {error}" for error in run.errors]
    for kind in KINDS:
        found = [f for f in run.findings if f.kind == kind]
        if not found:
            continue
        lines += ["", f"{kind} ({len(found)}): {WHAT_TO_DO[kind]}"]
        for f in found:
            lines.append(f"  {f.model} -> {f.target} via {f.via} [{', '.join(f.reasons)}] {f.severity}")
            lines.append(f"    {f.message}")
    if not run.findings and not run.errors:
        lines += ["", "no findings: every model in use has an allow release decision for what it serves"]
    for action in run.enforcement:
        lines.append(
            f"  enforced: {action['action']} on {action['model']} ({'ok' if action['ok'] else 'failed'})"
        )
    return "\n".join(lines)
