"""What every policygate command shares: how it fails (exit 2, one line on stderr) and ``--db``."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from policygate.exitcodes import EXIT_CODES

if TYPE_CHECKING:
    from policygate.config import Settings


if TYPE_CHECKING:
    from policygate.decisions.log import DecisionLog

EXIT_ERROR = EXIT_CODES["error"]


class TextOrJson(StrEnum):
    """``--format`` of the commands that print for people (text) or for programs (json)."""

    text = "text"
    json = "json"


DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Decision log URL (default: POLICYGATE_DB_URL or the local SQLite)."),
]


def group(help: str, **options: Any) -> typer.Typer:
    """A command group. Plain help text: Typer's rich formatting would import rich and markdown-it
    first (0.17 s of every ``--help``)."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None, **options)


def embedding(ctx: typer.Context) -> dict[str, Any]:
    """What a program that runs the CLI in-process hands to the Azure clients through Click's context
    object: ``app(args, obj={"credential": ..., "transport": ..., "retry_total": 0})`` (any
    azure-core client option; docs/python-api.md). Empty for a command line."""
    return dict(ctx.obj) if isinstance(ctx.obj, dict) else {}


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_ERROR)


def open_log(db: str | None, *, read_only: bool) -> DecisionLog:
    """The one way a command opens the decision log. Readers (``read_only``) never create a log where
    none was, nor migrate the schema of the log they read; writers create or migrate it."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from policygate.config import Settings
    from policygate.decisions.log import DecisionLog, LogError

    url = db or Settings().db_url
    try:
        make_url(url)
    except ArgumentError:
        fail(f"invalid decision log URL {url!r}: expected e.g. sqlite:///decisions.db")
    try:
        return DecisionLog(url, create=not read_only)
    except LogError as exc:
        fail(str(exc))


def settings_with(db: str | None = None) -> Settings:
    """The settings, with the decision log a command's ``--db`` names."""
    from policygate.config import Settings

    settings = Settings()
    if db:
        settings.db_url = db
    return settings
