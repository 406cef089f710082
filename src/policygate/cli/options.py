"""The options several commands take, defined once (help text included), so that they read and
behave the same in every command."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class TextOrJson(StrEnum):
    """``--format`` of the commands that print for people (text) or for programs (json)."""

    text = "text"
    json = "json"


class Format(StrEnum):
    """``--format`` of the commands that print a decision."""

    text = "text"
    json = "json"
    junit = "junit"
    github = "github"


DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Decision log URL (default: POLICYGATE_DB_URL or the local SQLite)."),
]
FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
TextOrJsonOption = Annotated[TextOrJson, typer.Option("--format", "-f", help="text or json.")]
MlflowUriOption = Annotated[
    str | None, typer.Option("--mlflow-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI).")
]
PolicyDirOption = Annotated[
    Path | None,
    typer.Option("--policy-dir", help="Policy directory (default: POLICYGATE_POLICY_DIR or ./rego)."),
]
ExamplesDirOption = Annotated[
    Path | None,
    typer.Option(
        "--examples-dir",
        help="Example documents <RULE-ID>.json each rule must deny (default: POLICYGATE_EXAMPLES_DIR or "
        "examples/evidence beside the policy directory).",
    ),
]
