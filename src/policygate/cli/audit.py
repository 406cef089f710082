"""``policygate audit``: re-decide every model in use, and report what went around the gate.

Exit codes for a scheduled CI job: 0 clean, 1 findings, 2 could not audit (a platform could not be
listed or a model could not be reached; also bad input).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from policygate.cli.common import embedding, fail, group, opened_log, settings_with
from policygate.cli.options import DbOption, MlflowUriOption

if TYPE_CHECKING:
    from policygate.audit.findings import AuditRun

audit_app = group(help="Audit what is deployed: drift, bypass, missed events (docs/audit.md).")


class Platform(StrEnum):
    mlflow = "mlflow"
    azureml = "azureml"


class ReportFormat(StrEnum):
    text = "text"
    json = "json"
    junit = "junit"
    github = "github"
    csv = "csv"


FormatOption = Annotated[ReportFormat, typer.Option("--format", "-f", help="Report format.")]


@audit_app.command("run")
def audit_run(
    ctx: typer.Context,
    platform: Annotated[
        list[Platform] | None,
        typer.Option(
            "--platform", "-p", help="Audit only this platform (repeatable; default: every one configured)."
        ),
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", "-t", help="Audit only this target stage.")
    ] = None,
    fmt: FormatOption = ReportFormat.text,
    mlflow_uri: MlflowUriOption = None,
    db: DbOption = None,
) -> None:
    """Audit every model in use, record the run, print its report: exit 0 clean, 1 findings, 2 incomplete."""
    from policygate.output import audit_renderer

    if target is not None and target not in ("development", "staging", "production"):
        fail(f"unknown target stage {target!r}: choose development, staging or production")
    run = audit_now(ctx, db, mlflow_uri, [p.value for p in platform or []], target)
    typer.echo(audit_renderer(fmt.value)(run))
    raise typer.Exit(run.exit_code)


def audit_now(
    ctx: typer.Context,
    db: str | None,
    mlflow_uri: str | None = None,
    platforms: list[str] | None = None,
    target: str | None = None,
) -> AuditRun:
    """One audit run, recorded, with the settings of the environment (the service's own policy,
    platforms and log); also what `policygate register --refresh` runs. Exit 2 when it cannot be
    recorded."""
    from policygate.audit.run import Auditor
    from policygate.decisions.log import LogError
    from policygate.runtime import open_runtime

    settings = settings_with(db)
    if mlflow_uri:
        settings.mlflow_uri = mlflow_uri
    try:
        with open_runtime(settings, **embedding(ctx)) as runtime:
            writeback = None
            if settings.audit_enforce and settings.mlflow_uri:
                from policygate.webhooks.writeback import MlflowWriteBack

                writeback = MlflowWriteBack(settings.mlflow_uri)
            return Auditor(runtime.service, settings, writeback=writeback).run(platforms or [], target)
    except LogError as exc:
        fail(f"{exc}; the audit was not recorded")


@audit_app.command("report")
def audit_report(
    run_id: Annotated[
        str | None, typer.Option("--run", help="The run's id (default: the latest run).")
    ] = None,
    fmt: FormatOption = ReportFormat.text,
    db: DbOption = None,
) -> None:
    """Print a recorded audit run's report; exit as the run did (0 clean, 1 findings, 2 incomplete)."""
    from policygate.audit.run import get_run, latest_run
    from policygate.output import audit_renderer

    with opened_log(db, read_only=True) as log:
        run = get_run(log, run_id) if run_id else latest_run(log)
    if run is None:
        fail(
            f"no audit run {run_id} in the decision log" if run_id else "no audit run in the decision log yet"
        )
    typer.echo(audit_renderer(fmt.value)(run))
    raise typer.Exit(run.exit_code)
