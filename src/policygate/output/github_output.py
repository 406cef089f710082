"""GitHub Actions: ``::error``/``::warning`` annotations, then Markdown for the job summary."""

from __future__ import annotations

from policygate.decisions.decision import Decision, Reason
from policygate.output.text_output import WHAT_IF

_ICON = {"allow": "✅ allowed", "deny": "❌ denied", "error": "⚠️ could not decide (denied)"}


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def annotation_lines(decision: Decision) -> list[str]:
    def line(level: str, r: Reason) -> str:
        return f"::{level} title={_escape_property(f'policygate {r.id}')}::{_escape_data(r.message)}"

    return [line("error", r) for r in decision.reasons] + [line("warning", r) for r in decision.warnings]


def summary(decision: Decision) -> str:
    subject = (decision.subject or {}).get("ref") or "unknown model"
    stage = (decision.target or {}).get("stage") or "unknown target"
    lines = [f"### policygate: `{subject}` → `{stage}`: {_ICON[decision.outcome]}", ""]
    if decision.what_if:
        lines += [f"_{WHAT_IF[0].upper()}{WHAT_IF[1:]}._", ""]
    rows = [("deny" if decision.outcome == "deny" else "error", r) for r in decision.reasons]
    rows += [("warn", r) for r in decision.warnings]
    if rows:
        lines += ["| | rule | severity | what to do |", "|---|---|---|---|"]
        lines += [
            f"| {kind} | **{r.id}** {_cell(r.title or '')} | {r.severity} | {_cell(r.message)} |"
            for kind, r in rows
        ]
        lines.append("")
    change = f" · ticket `{decision.ticket}`" if decision.ticket else ""
    change += f" · [CI run]({decision.run_url})" if decision.run_url else ""
    lines.append(f"Decision `{decision.decision_id}` · policy `{decision.policy_revision or '-'}`{change}")
    return "\n".join(lines)


def render(decision: Decision) -> str:
    return "\n".join([*annotation_lines(decision), "", summary(decision)])


def summary_many(decisions: list[tuple[str, Decision]]) -> str:
    """Each decision's job-summary Markdown under the name of its file."""
    return "\n\n".join(f"`{file}`\n\n{summary(d)}" for file, d in decisions)


def render_many(decisions: list[tuple[str, Decision]]) -> str:
    """Every file's annotations, then each summary under its file name."""
    lines = [line for _, d in decisions for line in annotation_lines(d)]
    return "\n".join([*lines, "", summary_many(decisions)])
