"""`policygate register`: one row per model version in use, from the latest audit run (read-only).

Exit codes: 0 shown, 1 no audit run recorded yet, 2 bad input, a log that cannot be read or (with
--refresh) an audit run that cannot be recorded.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from policygate.cli.common import fail, opened_log
from policygate.cli.options import DbOption, MlflowUriOption


class RegisterFormat(StrEnum):
    text = "text"
    json = "json"
    csv = "csv"


def register(
    ctx: typer.Context,
    target: Annotated[
        str | None, typer.Option("--target", "-t", help="Only this target: development|staging|production.")
    ] = None,
    fmt: Annotated[RegisterFormat, typer.Option("--format", "-f", help="text, json or csv.")] = (
        RegisterFormat.text
    ),
    refresh: Annotated[
        bool,
        typer.Option(
            "--refresh",
            help="Run an audit first (as `policygate audit run` does, with the service's own policy and "
            "settings), then print the register of that run.",
        ),
    ] = False,
    mlflow_uri: MlflowUriOption = None,
    db: DbOption = None,
) -> None:
    """The governed register: each model version in use (bypassed ones too) with its owner at release
    and now, its standing release decision, policy revision, lineage, change ticket and open findings,
    from the latest audit run (`policygate audit run` makes one; --refresh makes one first)."""
    from policygate.audit.register import register as register_of
    from policygate.audit.run import latest_run
    from policygate.evidence import STAGES
    from policygate.output.register_output import render_csv, render_text

    if target is not None and target not in STAGES:
        fail(f"--target: unknown stage {target!r}: expected one of {', '.join(STAGES)}")
    if refresh:
        from policygate.cli.audit import audit_now

        audit_now(ctx, db, mlflow_uri)
    with opened_log(db, read_only=True) as log:
        run = latest_run(log)
        reg = register_of(log, run, target) if run is not None else None
    if reg is None:
        typer.echo(f"no audit run recorded in {log.safe_url}: run `policygate audit run` first", err=True)
        raise typer.Exit(1)
    if fmt is RegisterFormat.json:
        typer.echo(json.dumps(reg.model_dump(mode="json"), indent=2))
    elif fmt is RegisterFormat.csv:
        typer.echo(render_csv(reg))
    else:
        typer.echo(render_text(reg))
