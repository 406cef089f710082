"""The rule catalogue (``policygate policy list``) as text and as the docs' Markdown table."""

from __future__ import annotations

from policygate.engine.catalogue import Catalogue

MODES = ("enforce", "warn", "dryrun")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(cat: Catalogue) -> str:
    """The rule table for docs (no revision: it would change with every edit)."""
    lines = ["| id | title | severity | mode | controls |", "|---|---|---|---|---|"]
    for r in cat.rules:
        lines.append(
            f"| {r.id} | {_cell(r.title)} | {r.severity} | {r.mode} | {_cell('; '.join(r.controls))} |"
        )
    return "\n".join(lines)


def render_text(cat: Catalogue) -> str:
    lines = [f"policy {cat.policy_revision}  ({len(cat.rules)} rules)"]
    width = max((len(r.title) for r in cat.rules), default=10)
    for r in cat.rules:
        lines.append(f"  {r.id:<9} {r.severity:<7} {r.mode:<8} {r.title:<{width}}  {', '.join(r.controls)}")
    counts = {m: sum(r.mode == m for r in cat.rules) for m in MODES}
    lines.append("modes: " + ", ".join(f"{n} {m}" for m, n in counts.items()))
    return "\n".join(lines)
