"""``policygate review``: the owner re-confirms a model version (LIF-002), as themselves, through a
policygate service that authenticates them and records it (like ``policygate approve``)."""

from __future__ import annotations

import os
from typing import Annotated, Any
from urllib.parse import quote

import typer

from policygate.cli.common import fail

Server = Annotated[
    str | None,
    typer.Option("--server", envvar="POLICYGATE_URL", help="The policygate service that records it."),
]


def review(
    ref: Annotated[str, typer.Argument(help="Model version reference, e.g. mlflow:models:/fraud/7.")],
    note: Annotated[str | None, typer.Option("--note", help="What you confirm or note.")] = None,
    server: Server = None,
) -> None:
    """Confirm, as the model's owner, that you still answer for it and that its use case and risk tier
    still hold: the service records the authenticated identity behind POLICYGATE_TOKEN, and only the
    owner may."""
    send(ref, "POST", "reviews", {"note": note} if note is not None else {}, server)


def send(ref: str, method: str, what: str, body: dict[str, Any], server: str | None) -> None:
    """Record a lifecycle event through the service (``method`` on /v1/models/{ref}/{what}); exit 2
    with the service's reason when it refuses."""
    from policygate.cli.remote import RemoteError, remote_lifecycle

    bearer = os.environ.get("POLICYGATE_TOKEN")
    if not ref.strip():
        fail("name a model version, e.g. mlflow:models:/fraud/7")
    if not server:
        fail(
            "lifecycle events are recorded by a policygate service that authenticates you: "
            "pass --server or set POLICYGATE_URL"
        )
    if not bearer:
        fail("set POLICYGATE_TOKEN to a token (or OIDC access token) of yours")
    try:
        answer = remote_lifecycle(server, bearer, method, f"{quote(ref, safe=':/')}/{what}", body)
    except RemoteError as exc:
        fail(f"{what} of {ref}: {exc}")
    e = answer["event"]
    text = f": {e['reason_or_note']}" if e.get("reason_or_note") else ""
    typer.echo(f"{e['kind']} {e['model']} by {e['by']} at {e['at']} ({e['id']}){text}")
    if e["kind"] != "review" and not answer.get("written_back"):
        typer.echo("note: not written back to the platform; the event is in policygate's log", err=True)
