"""`policygate token ...` (who may call the service) and `policygate approve` (in one's own name)."""

from __future__ import annotations

import getpass
import os
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from policygate.auth.tokens import TokenStore

from policygate.cli_common import DbOption, fail, group, open_log

token_app = group(help="API tokens: create (shown once), list, revoke.")


def _store(db: str | None, *, read_only: bool = False) -> TokenStore:
    from policygate.auth.tokens import TokenStore

    return TokenStore(open_log(db, read_only=read_only))


@token_app.command("create")
def token_create(
    name: Annotated[
        str, typer.Option("--name", help="Who or what holds the token, e.g. ci-bot or alice@corp.")
    ],
    scopes: Annotated[str, typer.Option("--scopes", help="Comma-separated: decide,read,approve,admin.")],
    db: DbOption = None,
) -> None:
    """Create a token. It is printed once, on the last line; only its hash is stored."""
    from policygate.auth.principal import parse_scopes

    try:
        wanted = parse_scopes(scopes)
    except ValueError as exc:
        fail(str(exc))
        return
    if not name.strip() or len(name) > 200:
        fail("--name must be 1 to 200 characters")
    token_id, token = _store(db).create(name.strip(), wanted, created_by=f"cli:{getpass.getuser()}")
    typer.echo(f"created token {token_id} for {name} with scopes {','.join(sorted(wanted))}")
    typer.echo("store it now: it cannot be shown again")
    typer.echo(token)


@token_app.command("list")
def token_list(db: DbOption = None) -> None:
    """List tokens (never the tokens themselves)."""
    for t in _store(db, read_only=True).list():
        state = "revoked" if t.revoked else "active"
        typer.echo(f"{t.id}  {state:<7}  {t.name:<30} {','.join(t.scopes):<28} created {t.created_at}")


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="Token id from `token list`.")], db: DbOption = None
) -> None:
    """Revoke a token; it stops working within seconds on every replica."""
    if not _store(db).revoke(token_id, by=f"cli:{getpass.getuser()}"):
        fail(f"no active token with id {token_id!r}")
    typer.echo(f"revoked {token_id}")


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
    import requests

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
        resp = requests.post(
            f"{str(server).rstrip('/')}/v1/approvals",
            json=body,
            headers={"Authorization": f"Bearer {bearer}"},
            timeout=30,
        )
    except requests.RequestException as exc:
        fail(f"policygate server {server} unreachable ({type(exc).__name__})")
        return
    if resp.status_code != 201:
        try:
            message = resp.json().get("message")
        except ValueError:
            message = resp.text[:200]
        fail(f"approval refused (HTTP {resp.status_code}): {message}")
    answer = resp.json()
    a = answer["approval"]
    typer.echo(f"{a['decision']} {a['model']} for {a['stage']} by {a['by']} at {a['at']} ({a['id']})")
    if not answer.get("mirrored"):
        typer.echo("note: not mirrored to the platform; the approval is in policygate's log", err=True)
