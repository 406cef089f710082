"""``policygate schema``: the JSON Schema of the evidence document (or of the policy parameters),
or its Markdown description."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer


class SchemaFormat(StrEnum):
    json = "json"
    markdown = "markdown"


def schema(
    fmt: Annotated[SchemaFormat, typer.Option("--format", "-f", help="json (JSON Schema) or markdown.")] = (
        SchemaFormat.json
    ),
    params: Annotated[
        bool,
        typer.Option(
            "--params", help="The schema of the policy parameters (data.policygate_params) instead."
        ),
    ] = False,
) -> None:
    """Print the JSON Schema of the evidence document (policygate.evidence/v1), or of the parameters."""
    from policygate.evidence import json_schema

    if params:
        from policygate.policy.params import json_schema as params_schema

        typer.echo(json.dumps(params_schema(), indent=2))
    elif fmt is SchemaFormat.markdown:
        from policygate.schema_doc import markdown

        typer.echo(markdown())
    else:
        typer.echo(json.dumps(json_schema(), indent=2))
