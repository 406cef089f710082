"""What every policygate command shares: how it fails (exit 2, one line on stderr) and ``--db``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, NoReturn

import typer

from policygate.config import Settings
from policygate.decisions.model import EXIT_CODES

EXIT_ERROR = EXIT_CODES["error"]


class TextOrJson(StrEnum):
    """``--format`` of the commands that print for people (text) or for programs (json)."""

    text = "text"
    json = "json"


DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Decision log URL (default: POLICYGATE_DB_URL or the local SQLite)."),
]


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_ERROR)


def settings_with(db: str | None = None) -> Settings:
    """The settings, with the decision log a command's ``--db`` names."""
    settings = Settings()
    if db:
        settings.db_url = db
    return settings
