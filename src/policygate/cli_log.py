"""`policygate log`: verify the chain, show a model's governed record, export for auditors and OPA tools.

Exit codes: ``verify`` 0 intact, 1 tampered; ``show`` 0 found, 1 nothing recorded;
every command 2 for bad input or a log that cannot be read. These commands only
read: they never create a log, nor migrate the one they audit.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    pass

from policygate.cli_common import DbOption, TextOrJson, fail, group, open_log

log_app = group(
    help="The decision log: verify it was not altered, show a model's record, export it.",
)

EXIT_TAMPERED = 1
EXIT_NOT_FOUND = 1


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


@log_app.command("verify")
def verify(
    db: DbOption = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint", help="A signed checkpoint kept elsewhere: the log must still extend it."
        ),
    ] = None,
    key: Annotated[
        Path | None, typer.Option("--key", help="The public key (FILE.pub) that signed the checkpoint.")
    ] = None,
    checkpoint_dir: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint-dir",
            help="A directory of signed checkpoints (POLICYGATE_CHECKPOINT_DIR): the log must extend "
            "every one, checked oldest first.",
        ),
    ] = None,
    witness_key: Annotated[
        Path | None,
        typer.Option(
            "--witness-key",
            help="A witness's public key: the checkpoint (the newest, with --checkpoint-dir) must carry "
            "its valid countersignature.",
        ),
    ] = None,
) -> None:
    """Walk the hash chain: exit 0 when intact, 1 naming the first record changed, removed or reordered.

    With ``--checkpoint`` (or ``--checkpoint-dir``) and ``--key``: also 1 when the log no longer
    extends a signed checkpoint (records removed from its end, a wipe, a rewrite), which no chain can
    show by itself; with ``--witness-key``, 1 without the witness's countersignature.
    """
    from policygate.auth.tokens import table_problems
    from policygate.decisions.checkpoint import (
        CheckpointError,
        cosigned_at,
        extension_problem,
        load_public,
        parse_signed,
    )
    from policygate.decisions.checkpoint_dir import DirCheck, check_dir
    from policygate.decisions.log import LogError

    given = checkpoint is not None or checkpoint_dir is not None
    if checkpoint is not None and checkpoint_dir is not None:
        fail("--checkpoint and --checkpoint-dir: give one")
    if given != (key is not None):
        fail("--checkpoint (or --checkpoint-dir) and --key go together")
    if witness_key is not None and not given:
        fail("--witness-key needs --checkpoint or --checkpoint-dir")
    signed = None
    try:
        public = load_public(key) if key is not None else None
        witness = load_public(witness_key) if witness_key is not None else None
    except CheckpointError as exc:
        fail(str(exc))
    if checkpoint_dir is not None and not checkpoint_dir.is_dir():
        fail(f"--checkpoint-dir: {checkpoint_dir} is not a directory")
    if checkpoint is not None and public is not None:
        try:
            text = checkpoint.read_text(encoding="utf-8")
            signed = parse_signed(text, public)
        except OSError as exc:
            fail(f"cannot read {checkpoint}: {exc.strerror or exc}")
        except CheckpointError as exc:
            typer.echo(f"TAMPERED: checkpoint {checkpoint}: {exc}")
            raise typer.Exit(EXIT_TAMPERED) from None
        if witness is not None and cosigned_at(text, witness) is None:
            typer.echo(f"TAMPERED: checkpoint {checkpoint}: no valid countersignature by the witness's key")
            raise typer.Exit(EXIT_TAMPERED)
    log = open_log(db, read_only=True)
    directory: DirCheck | None = None
    try:
        result = log.verify()
        seq, head = log.head()
        behind = extension_problem(log, signed) if signed is not None and result.ok else None
        if checkpoint_dir is not None and public is not None and result.ok:
            directory = check_dir(log, checkpoint_dir, public, witness)
        tokens = table_problems(log) if result.ok else []
    except LogError as exc:
        fail(str(exc))
    finally:
        log.close()
    if not result.ok:
        typer.echo(f"TAMPERED: decision log {log.safe_url}: {result.problem}")
        typer.echo(f"  first bad record: seq {result.seq} (after {result.records - 1} intact records)")
        raise typer.Exit(EXIT_TAMPERED)
    if behind is not None:
        typer.echo(f"TAMPERED: decision log {log.safe_url}: {behind}")
        raise typer.Exit(EXIT_TAMPERED)
    if directory is not None and (directory.problems or not directory.checked):
        for problem in directory.problems or [f"no signed checkpoint in {checkpoint_dir}"]:
            typer.echo(f"TAMPERED: decision log {log.safe_url}: checkpoint {problem}")
        raise typer.Exit(EXIT_TAMPERED)
    if tokens:
        typer.echo(f"TAMPERED: API tokens in {log.safe_url} differ from the chain: " + "; ".join(tokens[:10]))
        raise typer.Exit(EXIT_TAMPERED)
    typer.echo(f"OK: decision log {log.safe_url}: {result.records} records, chain intact, tokens match it")
    if signed is not None:
        typer.echo(f"  extends the signed checkpoint of {signed.time} (record {signed.size})")
    if directory is not None:
        first, last = directory.checked[0].checkpoint, directory.checked[-1].checkpoint
        typer.echo(
            f"  extends all {len(directory.checked)} signed checkpoints in {checkpoint_dir}, "
            f"from {first.time} (record {first.size}) to {last.time} (record {last.size})"
        )
        for note in directory.acknowledged:
            typer.echo(f"  ACKNOWLEDGED CUT: {note}")
    if witness is not None:
        typer.echo("  countersigned by the witness")
    typer.echo(f"  head: seq {seq} hash {head}")


@log_app.command("checkpoint")
def checkpoint_cmd(
    key: Annotated[Path, typer.Option("--key", help="The Ed25519 signing key (policygate key create).")],
    db: DbOption = None,
) -> None:
    """Print a signed checkpoint of the log (origin, size, head hash, time): keep it outside the database."""
    from policygate.decisions.checkpoint import CheckpointError, current, load_private, sign
    from policygate.decisions.log import LogError

    try:
        signing = load_private(key)
    except CheckpointError as exc:
        fail(str(exc))
    log = open_log(db, read_only=True)
    try:
        typer.echo(sign(current(log), signing), nl=False)
    except LogError as exc:
        fail(str(exc))
    finally:
        log.close()


@log_app.command("checkpoint-reset")
def checkpoint_reset(
    key: Annotated[Path, typer.Option("--key", help="The checkpoint key (POLICYGATE_CHECKPOINT_KEY).")],
    checkpoint_dir: Annotated[
        Path, typer.Option("--checkpoint-dir", help="Where serve writes (POLICYGATE_CHECKPOINT_DIR).")
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why the log no longer extends it (recorded).")],
    db: DbOption = None,
) -> None:
    """Acknowledge, in the chain, that the log no longer extends its newest signed checkpoint (a restore
    from backup, a cut investigated): the record, signed with the checkpoint key, lets serve sign again.
    The old checkpoints stay; `log verify --checkpoint-dir` shows the cut as acknowledged. Witnesses are
    not moved by it."""
    import getpass

    from policygate.decisions.checkpoint import CheckpointError, extension_problem, load_private
    from policygate.decisions.checkpoint_dir import read_dir, record_reset
    from policygate.decisions.log import LogError

    if not reason.strip():
        fail("--reason: say why (it is recorded)")
    try:
        signing = load_private(key)
    except CheckpointError as exc:
        fail(str(exc))
    stored, _ = read_dir(checkpoint_dir, signing.public_key())
    if not stored:
        fail(f"no checkpoint signed by this key in {checkpoint_dir}")
    newest = stored[-1]
    log = open_log(db, read_only=False)
    try:
        problem = extension_problem(log, newest.checkpoint)
        if problem is None:
            fail(f"the log extends {newest.path.name}: there is nothing to acknowledge")
        seq = record_reset(log, signing, newest.text, reason.strip(), getpass.getuser())
    except LogError as exc:
        fail(str(exc))
    finally:
        log.close()
    typer.echo(f"recorded checkpoint reset as record {seq}: {newest.path.name} abandoned ({problem})")


@log_app.command("show")
def show(
    ref: Annotated[
        str, typer.Argument(help="Model reference (e.g. mlflow:models:/fraud/7) or a decision id.")
    ],
    fmt: Annotated[TextOrJson, typer.Option("--format", "-f", help="text or json.")] = TextOrJson.text,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Recent decisions to include.")] = 20,
    db: DbOption = None,
) -> None:
    """The governed record of a model: owner, risk tier, lineage, latest decision per target, history.

    An alias (mlflow:models:/NAME@ALIAS) shows the version it points at: asked of MLflow
    (MLFLOW_TRACKING_URI) when it answers, else read from the aliases in the recorded evidence;
    the output says which (``alias`` in JSON)."""
    from policygate.decisions.log import LogError
    from policygate.decisions.record import governed_record

    log = open_log(db, read_only=True)
    try:
        version_ref, resolved = _resolved(log, ref)
        record = governed_record(log, version_ref, history=limit)
        single = None if record is not None else log.get(ref)
    except LogError as exc:
        fail(str(exc))
    finally:
        log.close()
    if record is None and single is None:
        typer.echo(f"no decision recorded for {ref!r} in {log.safe_url}", err=True)
        if resolved is None and "@" in ref:  # an alias that neither MLflow nor the log resolves
            typer.echo(
                "  (MLflow does not answer or has no such alias, and no recorded evidence shows it)",
                err=True,
            )
        raise typer.Exit(EXIT_NOT_FOUND)
    if record is not None and resolved is not None:
        record = {"alias": resolved.as_dict(), **record}
    if fmt is TextOrJson.json:
        typer.echo(json.dumps(record if record is not None else single, indent=2))
        return
    typer.echo(render_record(record) if record is not None else json.dumps(single, indent=2))


def _resolved(log: Any, ref: str) -> tuple[str, Any]:
    """``ref`` to read the log under: an alias resolved through MLflow, else from recorded evidence."""
    from pydantic import ValidationError

    from policygate.config import Settings
    from policygate.decisions.aliases import alias_of, for_reading, uri_lookup

    if alias_of(ref) is None:
        return ref, None
    try:
        uri = Settings().mlflow_uri
    except ValidationError as exc:
        fail(f"cannot read the settings that name MLflow (to resolve {ref!r}): {exc.errors()[0]['msg']}")
    return for_reading(log, ref, uri_lookup(uri))


def render_record(record: dict[str, Any]) -> str:
    """Plain text for a terminal: the four questions first, then the history."""
    lines = [f"model      {record['model']}"]
    if record.get("alias"):
        alias = record["alias"]
        lines.insert(0, f"alias      {alias['alias']} -> {alias['ref']} ({alias['note']})")
    own = record.get("ownership") or {}
    lines.append(
        f"owner      {own.get('owner') or '-'}  team {own.get('team') or '-'}  "
        f"risk tier {own.get('risk_tier') or '-'}  use case {own.get('use_case') or '-'}"
    )
    lineage = record.get("lineage") or {}
    run, code = lineage.get("run") or {}, lineage.get("code") or {}
    datasets = ", ".join(
        f"{d.get('name')}@{(d.get('digest') or '-')[:19]}" for d in lineage.get("datasets") or []
    )
    lines.append(
        f"lineage    run {run.get('id') or '-'} ({run.get('status') or '-'})  "
        f"commit {(code.get('commit') or '-')[:12]}  datasets {datasets or '-'}"
    )
    lines.append(f"policy     {record.get('policy_revision') or '-'} (newest release decision)")
    counts = record["decisions"]
    lines.append(
        f"decisions  {counts['total']} "
        f"(allow {counts['allow']}, deny {counts['deny']}, error {counts['error']})"
    )
    lines.append("latest release decision per target (collected evidence; what-ifs are in the history):")
    for stage, d in record["latest_decisions"].items():
        lines.append(
            f"  {stage:<12} {str(d['outcome']).upper():<6} {d['recorded_at']}  {_findings(d)}  "
            f"policy {d['policy_revision'] or '-'}  decision {d['decision_id']}{_change(d)}"
        )
    if record["approvals"]:
        lines.append("approvals seen:")
        for a in record["approvals"]:
            lines.append(
                f"  {a.get('by')} {a.get('decision')} {a.get('stage')} at {a.get('at')} ({a.get('source')})"
            )
    lines.append(f"history (newest first, {len(record['history'])} of {counts['total']}):")
    for d in record["history"]:
        stage = (d.get("target") or {}).get("stage") or "-"
        what_if = "  (what-if: supplied evidence)" if d.get("evidence_origin") == "supplied" else ""
        lines.append(
            f"  {d['seq']:>8} {d['recorded_at']}  {stage:<11} {str(d['outcome']):<5} "
            f"{_findings(d)}  {d['decision_id']}{_change(d)}{what_if}"
        )
    return "\n".join(lines)


def _change(summary: dict[str, Any]) -> str:
    """The change ticket and CI run a decision was asked with, when named."""
    parts = [f"ticket {summary['ticket']}"] if summary.get("ticket") else []
    parts += [f"run {summary['run_url']}"] if summary.get("run_url") else []
    return "".join(f"  {p}" for p in parts)


def _findings(summary: dict[str, Any]) -> str:
    """Deny reasons, then ``warn:`` and ``dry:`` findings (a dry-run rule's record shows here only)."""
    found = list(summary.get("reasons") or [])
    found += [f"warn:{i}" for i in summary.get("warnings") or []]
    found += [f"dry:{i}" for i in summary.get("dryrun") or []]
    return ",".join(found) or "-"


@log_app.command("export")
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
    from policygate.decisions.log import LogError
    from policygate.policy.params import rule_id

    start, end = _when(since, "--since"), _when(until, "--until")
    if start and end and start >= end:
        fail("--since must be earlier than --until")
    if rule is not None:
        try:
            rule = rule_id(rule)
        except ValueError as exc:
            fail(f"--rule: {exc}")
    log = open_log(db, read_only=True)
    models = None
    if model is not None:
        from policygate.decisions.record import model_spellings

        try:
            version_ref, resolved = _resolved(log, model)
        except LogError as exc:
            fail(str(exc))
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
    except LogError as exc:
        fail(str(exc))
    finally:
        log.close()
    typer.echo(f"exported {n} decisions from {log.safe_url}", err=True)
