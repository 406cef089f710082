"""`policygate policy show --revision sha256:...`: the policy files that decided under a revision, as
the decision log keeps them (policy.revisions), checked to recompute to it.

Exit codes: 0 shown (or written), 1 not kept or altered, 2 bad input or a log that cannot be read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from policygate.cli_common import DbOption, TextOrJson, fail, open_log

EXIT_NOT_KEPT = 1


def policy_show(
    revision: Annotated[
        str, typer.Option("--revision", help="The policy revision a decision names (sha256:...).")
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write the files here (a new or empty directory) instead of listing them."
        ),
    ] = None,
    fmt: Annotated[TextOrJson, typer.Option("--format", "-f", help="text or json.")] = TextOrJson.text,
    db: DbOption = None,
) -> None:
    """The policy files (modules and data) that decided under a revision, exactly as kept in the log;
    their digest is recomputed and must be the revision. Exit 1 when not kept or altered."""
    from policygate.decisions.log import LogError
    from policygate.policy.revisions import REVISION, RevisionError, kept

    if not REVISION.fullmatch(revision):
        fail(f"--revision: {revision[:80]!r} is not a policy revision (sha256: and 64 hex digits)")
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        fail(f"--out: {out} exists and is not an empty directory")
    log = open_log(db, read_only=True)
    try:
        files = kept(log, revision)
    except RevisionError as exc:
        typer.echo(f"{exc} (in {log.safe_url})", err=True)
        raise typer.Exit(EXIT_NOT_KEPT) from None
    except LogError as exc:
        fail(str(exc))
    finally:
        log.close()
    if out is not None:
        for relative, text in sorted(files.items()):
            target = out / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        typer.echo(
            f"wrote {len(files)} files of revision {revision} to {out} (their digest recomputes to it)"
        )
    elif fmt is TextOrJson.json:
        typer.echo(json.dumps({"revision": revision, "files": files}, indent=2))
    else:
        typer.echo(f"revision {revision}: {len(files)} files, their digest recomputes to it")
        for relative, text in sorted(files.items()):
            typer.echo(f"  {len(text.encode()):>8}  {relative}")
