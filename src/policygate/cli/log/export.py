"""``policygate log export``: every decision (oldest first) as JSONL, as OPA's own decision-log
events, or as CSV, for auditors and OPA tools."""

from __future__ import annotations

import contextlib
import os
import sys
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from policygate.cli.common import fail, opened_log
from policygate.cli.log.alias import resolved_ref
from policygate.cli.options import DbOption


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    opa = "opa"  # exactly the event a stock OPA's console decision log writes (decisions/opa_event.py)
    csv = "csv"


def _when(value: str | None, option: str) -> datetime | None:
    """ISO 8601 date or time; without an offset it is UTC."""
    from policygate.timeutil import as_utc

    if value is None:
        return None
    try:
        return as_utc(datetime.fromisoformat(value.strip()))
    except ValueError:
        fail(f"{option}: {value!r} is not an ISO 8601 date or time (e.g. 2026-11-01 or 2026-11-01T12:00:00Z)")


def export(
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            "-f",
            help="jsonl: policygate's events in OPA's field names; opa: exactly OPA's console "
            "decision-log events (docs/operations.md); csv: one row each.",
        ),
    ] = ExportFormat.jsonl,
    since: Annotated[
        str | None, typer.Option(help="Only decisions recorded at or after (ISO 8601; UTC if no offset).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Only decisions recorded before (ISO 8601).")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of standard output.")
    ] = None,
    db: DbOption = None,
    rule: Annotated[
        str | None,
        typer.Option("--rule", help="Only decisions with a finding of this rule id (deny, warn or dry-run)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Only decisions about this model version; an alias (mlflow:models:/NAME@ALIAS) is "
            "resolved as in log show.",
        ),
    ] = None,
) -> None:
    """Stream every decision (oldest first) as JSONL, as OPA's own decision-log events, or as CSV."""
    from policygate.decisions.export import write_csv, write_jsonl, write_opa
    from policygate.policy.params import rule_id

    start, end = _when(since, "--since"), _when(until, "--until")
    if start and end and start >= end:
        fail("--since must be earlier than --until")
    if rule is not None:
        try:
            rule = rule_id(rule)
        except ValueError as exc:
            fail(f"--rule: {exc}")
    with opened_log(db, read_only=True) as log:
        models = None
        if model is not None:
            from policygate.decisions.record import model_spellings

            version_ref, resolved = resolved_ref(log, model)
            if resolved is not None:
                typer.echo(f"{resolved.alias_ref} -> {resolved.ref} ({resolved.note})", err=True)
            models = model_spellings(version_ref)
        records = log.records(since=start, until=end, kind="decision", rule=rule, model=models)
        writer = {ExportFormat.jsonl: write_jsonl, ExportFormat.opa: write_opa}.get(fmt, write_csv)
        try:
            if output is None:
                n = writer(records, sys.stdout)
                sys.stdout.flush()
            else:
                with output.open("w", encoding="utf-8", newline="") as fh:
                    n = writer(records, fh)
        except BrokenPipeError:
            # the reader went away (`| head`): stop quietly, as Unix tools do
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        except OSError as exc:
            fail(f"cannot write {output}: {exc.strerror or exc}")
    typer.echo(f"exported {n} decisions from {log.safe_url}", err=True)
