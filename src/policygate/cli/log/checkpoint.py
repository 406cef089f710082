"""``policygate log checkpoint`` (a signed checkpoint of the log, to keep outside the database) and
``log checkpoint-reset`` (acknowledge, in the chain, a log that no longer extends its newest one)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from policygate.cli.common import fail, opened_log
from policygate.cli.options import DbOption


def checkpoint(
    key: Annotated[Path, typer.Option("--key", help="The Ed25519 signing key (policygate key create).")],
    db: DbOption = None,
) -> None:
    """Print a signed checkpoint of the log (origin, size, head hash, time): keep it outside the database."""
    from policygate.decisions.checkpoint import CheckpointError, current, load_private, sign

    try:
        signing = load_private(key)
    except CheckpointError as exc:
        fail(str(exc))
    with opened_log(db, read_only=True) as log:
        typer.echo(sign(current(log), signing), nl=False)


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
    with opened_log(db, read_only=False) as log:
        problem = extension_problem(log, newest.checkpoint)
        if problem is None:
            fail(f"the log extends {newest.path.name}: there is nothing to acknowledge")
        seq = record_reset(log, signing, newest.text, reason.strip(), getpass.getuser())
    typer.echo(f"recorded checkpoint reset as record {seq}: {newest.path.name} abandoned ({problem})")
