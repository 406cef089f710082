"""`policygate log pack`: the evidence pack of one model version, and its offline verification.

``log pack MODEL_REF --out FILE`` writes the pack (read-only on the log); ``log pack verify FILE --key
PUB`` checks one with the checkpoint's public key alone: no database, no network. Exit codes: 0 written
or verified; 1 a pack that does not verify (each problem named); 2 bad input or a log that cannot be read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from policygate.cli.common import fail, opened_log, settings_with
from policygate.cli.options import DbOption

VERIFY = "verify"


def pack(
    ref: Annotated[str, typer.Argument(metavar="MODEL_REF", help="The model version, or `verify`.")],
    file: Annotated[
        Path | None, typer.Argument(metavar="[FILE]", help="With `verify`: the pack to check.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Where to write the pack (tar.gz).")] = None,
    key: Annotated[
        Path | None, typer.Option("--key", help="With `verify`: the checkpoint's public key (PEM).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Write every record about MODEL_REF (all kinds), its evidence, the policy that decided, attestations,
    a signed checkpoint and the chain segment proving each record in it; `log pack verify FILE --key PUB`
    checks such a pack offline."""
    if ref == VERIFY:
        _verify(file, key)
        return
    if out is None or file is not None:
        fail("usage: policygate log pack MODEL_REF --out FILE (or: log pack verify FILE --key PUB)")
    from policygate.audit.pack import PackError
    from policygate.audit.pack_build import build_configured
    from policygate.refs import RefError, parse

    try:
        version = str(parse(ref))
    except RefError as exc:
        fail(f"MODEL_REF: {exc}")
    settings = settings_with(db)
    with opened_log(db, read_only=True) as log:
        try:
            data = build_configured(log, version, settings.checkpoint_key, settings.checkpoint_dir)
        except PackError as exc:
            fail(str(exc))
    try:
        out.write_bytes(data)
    except OSError as exc:
        fail(f"--out: cannot write {out}: {exc.strerror}")
    typer.echo(f"wrote {out} ({len(data)} bytes)")


def _verify(file: Path | None, key: Path | None) -> None:
    from policygate.audit.pack import PackError, read
    from policygate.audit.pack_verify import verify
    from policygate.decisions.checkpoint import CheckpointError, load_public

    if file is None or key is None:
        fail("usage: policygate log pack verify FILE --key PUB")
    try:
        public = load_public(key)
        verdict = verify(read(file), public)
    except (CheckpointError, PackError) as exc:
        fail(str(exc))
    for note in verdict.notes:
        typer.echo(f"  note: {note}")
    if not verdict.ok:
        typer.echo(f"PACK DOES NOT VERIFY: {file}")
        for problem in verdict.problems:
            typer.echo(f"  {problem}")
        raise typer.Exit(1)
    typer.echo(
        f"OK: {verdict.records} record(s) about {verdict.model} proven in the signed log; "
        "every digest matches"
    )
