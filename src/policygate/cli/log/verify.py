"""``policygate log verify``: the hash chain is intact, and the log still extends its signed
checkpoints (and their witness's countersignature); exit 0 intact, 1 tampered, 2 could not check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from policygate.cli.common import fail, opened_log
from policygate.cli.options import DbOption

EXIT_TAMPERED = 1


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
    directory: DirCheck | None = None
    with opened_log(db, read_only=True) as log:
        result = log.verify()
        seq, head = log.head()
        behind = extension_problem(log, signed) if signed is not None and result.ok else None
        if checkpoint_dir is not None and public is not None and result.ok:
            directory = check_dir(log, checkpoint_dir, public, witness)
        tokens = table_problems(log) if result.ok else []
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
