"""`policygate check` of an Azure ML model version on the replayed workspace (tests/fixtures/azure)."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from policygate.cli import app
from tests.fixtures.azure.world import AzureWorld

REF = "azureml:fraud-detector:3"
runner = CliRunner()


def check(world: AzureWorld, db: str, ref: str = REF, *extra: str) -> Any:
    args = [
        "check",
        ref,
        "--target",
        "production",
        "--requested-by",
        "ci@corp",
        "--db",
        db,
        "--format",
        "json",
    ]
    return runner.invoke(app, [*args, *extra], obj=world.client_options())


def decide(world: AzureWorld, db: str, ref: str = REF, *extra: str) -> dict[str, Any]:
    """The decision, its exit code checked against its outcome."""
    result = check(world, db, ref, *extra)
    decision: dict[str, Any] = json.loads(result.stdout)
    assert result.exit_code == {"allow": 0, "deny": 1, "error": 2}[decision["outcome"]], result.output
    return decision
