"""``policygate serve``: the HTTP API and the console, with a managed or configured OPA."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Annotated

import typer

from policygate.cli import collector
from policygate.cli.common import fail, settings_with
from policygate.cli.options import DbOption


def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    db: DbOption = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="Reload policies and data when files in the policy directory (or the rule examples) "
            "change (managed OPA only); a change that fails a load check is refused: the previous policy "
            "keeps deciding and /readyz answers 503 naming it.",
        ),
    ] = False,
    candidate_policy: Annotated[
        Path | None,
        typer.Option(
            "--candidate-policy",
            help="A candidate policy directory the console (/ui/policy) can replay over the recorded "
            "decisions, in an OPA of its own.",
        ),
    ] = None,
) -> None:
    """Run the HTTP API (FastAPI + uvicorn) with a managed or configured OPA, and the console at /ui."""
    import uvicorn

    from policygate.api.app import create_app

    # The service log: policygate's own news (start, reloads, refused changes, webhook work) at INFO;
    # libraries stay at main()'s WARNING. Each decision is in the decision log, each request in the
    # access log.
    logging.getLogger("policygate").setLevel(logging.INFO)
    settings = settings_with(db)
    settings.watch = settings.watch or watch
    if candidate_policy is not None:
        if not (candidate_policy / "policygate").is_dir():
            fail(f"--candidate-policy: {candidate_policy} has no policygate/ package directory")
        settings.console_candidate_policy = candidate_policy
    if not _loopback(host) and not settings.auth_required:
        logging.getLogger("policygate").warning("binding %s (not loopback): authentication is required", host)
        settings.auth_required = True
    from policygate.logredact import install

    install()
    app = create_app(settings)
    collector.for_a_service()
    uvicorn.run(app, host=host, port=port, log_level="info")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
