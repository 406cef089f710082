"""The main job: `policygate demo` trains and registers models in a real MLflow server and gates each."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from policygate.cli import app
from policygate.decisions.log import DecisionLog


def test_demo_gates_every_example_model_and_leaves_nothing_running(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/decisions.db"
    result = CliRunner().invoke(app, ["demo", "--data-dir", str(tmp_path / "demo"), "--db", db])
    assert result.exit_code == 0, result.output
    table = result.stdout[result.stdout.index("model ") :]
    expected = {
        "mlflow:models:/fraud-detector@champion": ("allow", "-"),
        "mlflow:models:/churn-predictor/1": ("deny", "LIN-003"),
        "mlflow:models:/credit-scorer/1": ("deny", "APR-001, APR-002"),
        "mlflow:models:/marketing-uplift/1": ("deny", "OWN-001"),
        "mlflow:models:/loan-default/1": ("deny", "APR-001"),
    }
    for ref, (outcome, rules) in expected.items():
        line = next(line for line in table.splitlines() if line.startswith(ref + " "))
        assert f" {outcome} " in line and line.rstrip().endswith(rules), line
    log = DecisionLog(db)
    assert log.verify().records == 6  # five decisions, and the content of the policy revision that made them
    log.close()
    assert "MLflow server stopped" in result.stdout
