"""What every policygate command shares: how it fails (exit 2, one line on stderr), how it opens the
decision log, the settings its ``--db`` names, and how it prints a decision."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from policygate.cli.options import Format
from policygate.exitcodes import EXIT_CODES

if TYPE_CHECKING:
    from policygate.config import Settings
    from policygate.decisions.decision import Decision
    from policygate.decisions.log import DecisionLog
    from policygate.evidence import Target
    from policygate.refs import ModelRef
    from policygate.runtime import Runtime

EXIT_ERROR = EXIT_CODES["error"]

Command = Callable[..., None] | typer.Typer
"""A command (its function) or a group of them (a Typer)."""


def group(help: str, **options: Any) -> typer.Typer:
    """A command group. Plain help text: Typer's rich formatting would import rich and markdown-it
    first (0.17 s of every ``--help``)."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None, **options)


def add_commands(parent: typer.Typer, commands: Iterable[tuple[str, Command]]) -> None:
    """Add each command or group to ``parent`` under its name, in this order (``--help`` lists the
    commands in the order they were added, then the groups)."""
    for name, command in commands:
        if isinstance(command, typer.Typer):
            parent.add_typer(command, name=name)
        else:
            parent.command(name)(command)


def embedding(ctx: typer.Context) -> dict[str, Any]:
    """What a program that runs the CLI in-process hands to the Azure clients through Click's context
    object: ``app(args, obj={"credential": ..., "transport": ..., "retry_total": 0})`` (any
    azure-core client option; docs/python-api.md). Empty for a command line."""
    return dict(ctx.obj) if isinstance(ctx.obj, dict) else {}


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_ERROR)


def echo_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def open_log(db: str | None, *, read_only: bool) -> DecisionLog:
    """The one way a command opens the decision log. Readers (``read_only``) never create a log where
    none was, nor migrate the schema of the log they read; writers create or migrate it."""
    from policygate.config import Settings
    from policygate.decisions.log import DecisionLog, LogError

    url = db or Settings().db_url
    try:  # a URL that does not parse is a LogError too (not echoed: it may hold a password)
        return DecisionLog(url, create=not read_only)
    except LogError as exc:
        fail(str(exc))


@contextmanager
def opened_log(db: str | None, *, read_only: bool, unless: str = "") -> Iterator[DecisionLog]:
    """:func:`open_log` for the block; a LogError in it fails the command with its message (and
    ``unless``, e.g. "; the waiver was not granted"); the log is closed either way."""
    from policygate.decisions.log import LogError

    log = open_log(db, read_only=read_only)
    try:
        yield log
    except LogError as exc:
        fail(f"{exc}{unless}")
    finally:
        log.close()


def settings_with(db: str | None = None) -> Settings:
    """The settings, with the decision log a command's ``--db`` names."""
    from policygate.config import Settings

    settings = Settings()
    if db:
        settings.db_url = db
    return settings


@contextmanager
def deciding(settings: Settings, **options: Any) -> Iterator[Runtime]:
    """The runtime a deciding command (``evaluate``, ``check``) runs on, ``options`` passed to
    :func:`~policygate.runtime.open_runtime`. Its engine starts ahead, so OPA compiles the policy
    while the decision log's libraries import (:mod:`policygate.engine.ahead`), and is stopped if
    the command ends first; a log that cannot open or record is exit 2, "no decision was made"."""
    from functools import partial

    from policygate.engine.ahead import EngineAhead
    from policygate.policy.serving import engine_for

    with EngineAhead(partial(engine_for, settings)) as ahead:
        from policygate.decisions.log import LogError
        from policygate.runtime import open_runtime

        try:
            with open_runtime(settings, engine_ahead=ahead, **options) as runtime:
                yield runtime
        except LogError as exc:
            fail(f"{exc}; no decision was made")


def parse_ref(text: str) -> ModelRef:
    from policygate.refs import RefError, parse

    try:
        return parse(text)
    except RefError as exc:
        fail(str(exc))


def parse_target(stage: str, environment: str | None = None) -> Target:
    from pydantic import ValidationError

    from policygate.evidence import Target

    try:
        return Target(stage=stage.lower(), environment=environment)  # type: ignore[arg-type]
    except ValidationError:
        fail(f"unknown stage {stage!r}: expected one of development, staging, production")


def emit(decision: Decision, fmt: Format) -> NoReturn:
    """Print the decision in the chosen format and exit with its code (0 allow, 1 deny, 2 error)."""
    from policygate.output import renderer

    typer.echo(renderer(fmt.value)(decision))
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if fmt is Format.github and summary_file:
        from policygate.output.github_output import summary

        with open(summary_file, "a", encoding="utf-8") as fh:
            fh.write(summary(decision) + "\n")
    raise typer.Exit(decision.exit_code)


def policy_dir_or_default(policy_dir: Path | None) -> Path:
    """``--policy-dir``, else the configured one; exit 2 when it is not a directory."""
    from policygate.config import Settings

    path = policy_dir or Settings().policy_path
    if not path.is_dir():
        fail(f"policy directory {path} does not exist")
    return path


def examples_dir_or_default(policy_dir: Path | None, examples_dir: Path | None) -> Path | None:
    """``--examples-dir``, else the configured one (with no ``--policy-dir``, or when one is set)."""
    from policygate.config import Settings

    if examples_dir is not None:
        return examples_dir
    settings = Settings()
    return settings.examples_dir if policy_dir is None or settings.examples_dir else None
