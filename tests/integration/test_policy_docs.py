"""docs/policy-authoring.md carries the rule table exactly as `policygate policy list --format markdown`
prints it (the walk-through's rule itself is exercised in test_policy_rollout.py)."""

from __future__ import annotations

from typer.testing import CliRunner

from policygate.cli import app
from tests.support.checkout import REGO, ROOT


def test_rule_table_matches_the_policies() -> None:
    result = CliRunner().invoke(app, ["policy", "list", "--policy-dir", str(REGO), "--format", "markdown"])
    assert result.exit_code == 0, result.output
    doc = (ROOT / "docs" / "policy-authoring.md").read_text()
    begin, end = "<!-- BEGIN generated rule table -->\n", "<!-- END generated rule table -->"
    table = doc.split(begin, 1)[1].split(end, 1)[0]
    assert table == result.stdout, (
        "docs/policy-authoring.md is stale: regenerate the table with "
        "`policygate policy list --format markdown`"
    )
