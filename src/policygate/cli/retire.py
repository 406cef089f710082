"""``policygate retire`` and ``policygate unretire``: retire a model version (LIF-001 denies it
everywhere from then on), or undo that as a new recorded event; both with a reason, through a
policygate service that authenticates the caller (the owner, or a caller with ``approve``)."""

from __future__ import annotations

from typing import Annotated

import typer

from policygate.cli.review import Server, send

Ref = Annotated[str, typer.Argument(help="Model version reference, e.g. mlflow:models:/fraud/7.")]


def retire(
    ref: Ref,
    reason: Annotated[str, typer.Option("--reason", help="Why it is retired (recorded).")],
    server: Server = None,
) -> None:
    """Retire a model version: recorded in policygate's log as you, tagged policygate.lifecycle=retired
    on MLflow; no target allows it afterwards (LIF-001)."""
    send(ref, "POST", "retirement", {"reason": reason}, server)


def unretire(
    ref: Ref,
    reason: Annotated[str, typer.Option("--reason", help="Why it is back in use (recorded).")],
    server: Server = None,
) -> None:
    """Undo a retirement: a new recorded event with its reason (DELETE /v1/models/{ref}/retirement),
    tagged policygate.lifecycle=active on MLflow."""
    send(ref, "DELETE", "retirement", {"reason": reason}, server)
