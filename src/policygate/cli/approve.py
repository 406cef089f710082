"""``policygate approve``: approve (reject, withdraw) a model version as yourself, through a
policygate service that authenticates you and records it."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from policygate.cli.common import fail


def approve(
    ref: Annotated[str, typer.Argument(help="Model version reference, e.g. mlflow:models:/fraud/7.")],
    stage: Annotated[
        str, typer.Option("--stage", help="Stage approved for: development|staging|production.")
    ],
    reject: Annotated[
        bool, typer.Option("--reject", help="Record a rejection instead of an approval.")
    ] = False,
    withdraw: Annotated[
        bool,
        typer.Option("--withdraw", help="Take your approval for this version and stage back (recorded)."),
    ] = False,
    comment: Annotated[str | None, typer.Option(help="Why.")] = None,
    server: Annotated[
        str | None,
        typer.Option("--server", envvar="POLICYGATE_URL", help="The policygate service that records it."),
    ] = None,
) -> None:
    """Approve a model version as yourself: the service records the authenticated identity behind
    POLICYGATE_TOKEN, never a name typed here."""
    from policygate.cli.remote import RemoteError, remote_approve

    bearer = os.environ.get("POLICYGATE_TOKEN")
    if reject and withdraw:
        fail("--reject and --withdraw: choose one")
    if not server:
        fail(
            "approvals are recorded by a policygate service that authenticates you: "
            "pass --server or set POLICYGATE_URL"
        )
    if not bearer:
        fail("set POLICYGATE_TOKEN to a token (or OIDC access token) of yours with the 'approve' scope")
    body = {
        "model": ref,
        "stage": stage,
        "decision": "withdrawn" if withdraw else "rejected" if reject else "approved",
        "comment": comment,
    }
    try:
        answer = remote_approve(server, bearer, body)
    except RemoteError as exc:
        fail(str(exc))
    a = answer["approval"]
    typer.echo(f"{a['decision']} {a['model']} for {a['stage']} by {a['by']} at {a['at']} ({a['id']})")
    if not answer.get("mirrored"):
        typer.echo("note: not mirrored to the platform; the approval is in policygate's log", err=True)
