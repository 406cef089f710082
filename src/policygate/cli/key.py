"""`policygate key create`: the Ed25519 key that signs the decision log's checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from policygate.cli.common import fail, group

key_app = group(help="Signing keys for the decision log's checkpoints.")


@key_app.command("create")
def key_create(
    out: Annotated[
        Path, typer.Option("--out", help="Private key file (mode 0600); the public key is FILE.pub.")
    ],
) -> None:
    """Make an Ed25519 key: FILE (private, keep it where only the service reads it) and FILE.pub (for
    auditors: `policygate log verify --checkpoint ... --key FILE.pub`)."""
    from policygate.decisions.checkpoint import create_key

    try:
        private, public = create_key(out)
    except FileExistsError:
        fail(f"{out} exists: a key is never overwritten")
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    typer.echo(f"private key: {private} (mode 0600)\npublic key:  {public}")
