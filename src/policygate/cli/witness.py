"""`policygate witness`: run a checkpoint witness, with its own key and store (docs/operations.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from policygate.cli import collector
from policygate.cli.common import fail


def witness(
    key: Annotated[
        Path, typer.Option("--key", help="The witness's own Ed25519 key (policygate key create).")
    ],
    log_key: Annotated[
        list[Path],
        typer.Option("--log-key", help="A log's public checkpoint key (FILE.pub) it witnesses; repeatable."),
    ],
    store: Annotated[
        Path, typer.Option("--store", help="Its store: the last checkpoint it countersigned per log.")
    ],
    name: Annotated[
        str, typer.Option("--name", help="Its name in the cosignature lines (a key name: no spaces).")
    ] = "policygate-witness",
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8090,
) -> None:
    """Countersign a log's checkpoints (POST /add-checkpoint) only when each extends the last one it
    countersigned: a log cut and re-signed with the service's own key is refused (422)."""
    import uvicorn

    from policygate.api.witness import create_witness_app
    from policygate.decisions.checkpoint import CheckpointError, load_private, load_public
    from policygate.decisions.witness import Witness

    if not name or " " in name or "+" in name:
        fail("--name: a key name has no spaces or '+'")
    try:
        signing = load_private(key)
        trusted = [load_public(path) for path in log_key]
    except CheckpointError as exc:
        fail(str(exc))
    try:
        app = create_witness_app(Witness(signing, name, store, trusted))
    except OSError as exc:
        fail(f"--store {store}: {exc.strerror or exc}")
    collector.for_a_service()
    uvicorn.run(app, host=host, port=port, log_level="info")
