"""Plain text for a person reading a CI log: a verdict line, then one line per reason."""

from __future__ import annotations

from policygate.decisions.decision import Decision, Reason

WHAT_IF = "what-if: evidence supplied by the caller, not collected by policygate; not a release decision"
_VERDICT = {"allow": "ALLOW", "deny": "DENY", "error": "ERROR (could not decide; denied)"}


def _line(kind: str, r: Reason) -> str:
    waiver = f" [waiver {r.waiver}]" if r.waiver else ""
    return f"  {kind:<5} {r.id:<10} {r.severity:<7} {r.message}{waiver}"


def render(decision: Decision) -> str:
    subject = (decision.subject or {}).get("ref") or "<unknown model>"
    stage = (decision.target or {}).get("stage") or "<unknown target>"
    lines = [f"{_VERDICT[decision.outcome]}: {subject} -> {stage}"]
    if decision.what_if:
        lines.append(f"  {WHAT_IF}")
    lines += [_line("deny" if decision.outcome == "deny" else "error", r) for r in decision.reasons]
    lines += [_line("warn", r) for r in decision.warnings]
    lines += [_line("dry", r) for r in decision.dryrun]
    ticket = f"  ticket {decision.ticket}" if decision.ticket else ""
    lines.append(f"  decision {decision.decision_id}  policy {decision.policy_revision or '-'}{ticket}")
    return "\n".join(lines)


def render_many(decisions: list[tuple[str, Decision]]) -> str:
    """One line per file: verdict, file, model -> target, the deny (or error) reason ids."""
    width = max(len(f) for f, _ in decisions)
    lines = []
    for file, d in decisions:
        subject = (d.subject or {}).get("ref") or "<unknown model>"
        stage = (d.target or {}).get("stage") or "<unknown target>"
        ids = ", ".join(r.id for r in d.reasons)
        note = "  (what-if)" if d.what_if else ""
        lines.append(f"{d.outcome.upper():<6} {file:<{width}}  {subject} -> {stage}  {ids}".rstrip() + note)
    return "\n".join(lines)
