"""``policygate check``: gate a promotion (collect evidence, evaluate, record, print); exit 0 allow,
1 deny, 2 error. With ``--server``, a running policygate decides and records it (one central log)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from policygate.cli.common import deciding, embedding, emit, fail, parse_ref, parse_target, settings_with
from policygate.cli.options import DbOption, Format, FormatOption, MlflowUriOption

if TYPE_CHECKING:
    from policygate.evidence import Change


def check(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Model reference, e.g. mlflow:models:/fraud/7 or ...@champion.")],
    target: Annotated[
        str, typer.Option("--target", "-t", help="Target stage: development|staging|production.")
    ],
    requested_by: Annotated[
        str | None,
        typer.Option(
            "--requested-by",
            help="Who asks (default: $GITHUB_ACTOR or $USER). With --server the server's authenticated "
            "caller is the requester; a different --requested-by needs a token with the 'delegate' scope.",
        ),
    ] = None,
    environment: Annotated[str | None, typer.Option(help="Target environment name, e.g. prod-eu.")] = None,
    fmt: FormatOption = Format.text,
    mlflow_uri: MlflowUriOption = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server", envvar="POLICYGATE_URL", help="Ask a running policygate (central log) instead."
        ),
    ] = None,
    db: DbOption = None,
    ticket: Annotated[
        str | None,
        typer.Option("--ticket", help="Change ticket of this promotion (recorded as request.ticket)."),
    ] = None,
    run_url: Annotated[
        str | None,
        typer.Option(
            "--run-url",
            help="URL of the CI run that asks (recorded as request.run_url). With --format github and no "
            "--run-url: this GitHub Actions run ($GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/"
            "$GITHUB_RUN_ID).",
        ),
    ] = None,
) -> None:
    """Gate a promotion: collect evidence, evaluate, record, print; exit 0 allow, 1 deny, 2 error."""
    model = parse_ref(ref)
    stage = parse_target(target, environment)
    change = parse_change(ticket, run_url or (github_run_url() if fmt is Format.github else None))
    who = requested_by or os.environ.get("GITHUB_ACTOR") or os.environ.get("USER")
    if server:
        from policygate.cli.remote import RemoteError, remote_decide

        token = os.environ.get("POLICYGATE_TOKEN")
        asker = requested_by if token else who  # an authenticated caller asks as itself unless told
        try:
            decision = remote_decide(server, str(model), stage, asker, token, change=change)
        except RemoteError as exc:
            fail(str(exc))
        emit(decision, fmt)
    settings = settings_with(db)
    if mlflow_uri:
        settings.mlflow_uri = mlflow_uri
    with deciding(settings, **embedding(ctx)) as runtime:
        decision = runtime.service.decide(model, stage, who, change=change)
    emit(decision, fmt)


def parse_change(ticket: str | None, run_url: str | None) -> Change:
    """The ticket and run URL, checked as the evidence will hold them (exit 2 naming the option)."""
    from pydantic import ValidationError

    from policygate.evidence import Change

    try:
        return Change(ticket=ticket, run_url=run_url)
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}")


def github_run_url() -> str | None:
    """This GitHub Actions run's page, from the variables GitHub sets in every job (else None)."""
    parts = [os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    if not all(parts):
        return None
    server, repository, run_id = parts
    return f"{str(server).rstrip('/')}/{repository}/actions/runs/{run_id}"
