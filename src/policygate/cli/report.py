"""`policygate report owners`: every model in use with its owner, the owner's status in the directory,
the last owner review and the next one due, the counting approvers and the deployment identity's status,
from the latest audit run (read-only; docs/identity.md).

Exit codes: 0 shown, 1 no audit run recorded yet, 2 bad input or a log that cannot be read.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from policygate.cli.common import group, opened_log
from policygate.cli.options import DbOption

report_app = group(help="Reports from the latest audit run: owners (docs/identity.md).")


class OwnersFormat(StrEnum):
    text = "text"
    json = "json"
    csv = "csv"


@report_app.command("owners")
def owners(
    fmt: Annotated[
        OwnersFormat, typer.Option("--format", "-f", help="text, json or csv.")
    ] = OwnersFormat.text,
    db: DbOption = None,
) -> None:
    """Every model in use: owner and the owner's status (active, disabled, left, unknown, service, not
    checked), last review, next review due, counting approvers, deployment identity status."""
    from policygate.audit.owners import owners_report, params_of
    from policygate.audit.run import latest_run
    from policygate.config import Settings
    from policygate.output import owners_csv, owners_json, owners_text

    with opened_log(db, read_only=True) as log:
        run = latest_run(log)
        report = owners_report(log, run, params_of(Settings().policy_path)) if run is not None else None
    if report is None:
        typer.echo(f"no audit run recorded in {log.safe_url}: run `policygate audit run` first", err=True)
        raise typer.Exit(1)
    render = {OwnersFormat.json: owners_json, OwnersFormat.csv: owners_csv}.get(fmt, owners_text).render
    typer.echo(render(report))
