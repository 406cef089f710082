"""``policygate token create|list|revoke``: the API tokens that say who may call the service."""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from policygate.auth.tokens import TokenStore

from policygate.cli.common import fail, group, open_log
from policygate.cli.options import DbOption

token_app = group(help="API tokens: create (shown once), list, revoke.")


def _store(db: str | None, *, read_only: bool = False) -> TokenStore:
    from policygate.auth.tokens import TokenStore

    return TokenStore(open_log(db, read_only=read_only))


@token_app.command("create")
def token_create(
    name: Annotated[
        str, typer.Option("--name", help="Who or what holds the token, e.g. ci-bot or alice@corp.")
    ],
    scopes: Annotated[
        str, typer.Option("--scopes", help="Comma-separated: decide,read,approve,delegate,audit,admin.")
    ],
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
