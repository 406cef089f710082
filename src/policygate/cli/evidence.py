"""``policygate evidence collect``: the evidence document of a model version, for policy authors
(nothing is evaluated or recorded)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from policygate.cli.common import embedding, fail, group, parse_ref, parse_target

evidence_app = group(help="Evidence documents: collect them for policy authors.")


@evidence_app.command("collect")
def evidence_collect(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Model reference.")],
    target: Annotated[str, typer.Option("--target", "-t", help="Target stage.")] = "production",
    requested_by: Annotated[str | None, typer.Option("--requested-by")] = None,
    mlflow_uri: Annotated[str | None, typer.Option("--mlflow-uri")] = None,
) -> None:
    """Print the evidence document for a model version (nothing is evaluated or recorded)."""
    from policygate.config import Settings
    from policygate.evidence import Request
    from policygate.runtime import build_directory_of, build_sources
    from policygate.sources.base import SourceError
    from policygate.sources.collect import Collector
    from policygate.timeutil import now_iso

    model = parse_ref(ref)
    stage = parse_target(target)
    settings = Settings()
    if mlflow_uri:
        settings.mlflow_uri = mlflow_uri
    azure = embedding(ctx)  # the graph directory uses the Azure source's credential and transport
    directory = build_directory_of(settings, azure.get("credential"), azure.get("transport"))
    collector = Collector(
        build_sources(settings, **azure),
        settings.links,
        directory=directory,
        budget_s=settings.source_timeout_s,
    )
    try:
        evidence = collector.collect(
            model, Request(target=stage, requested_by=requested_by, requested_at=now_iso())
        )
    except SourceError as exc:
        fail(str(exc))
    finally:
        collector.close()
    typer.echo(json.dumps(evidence.to_input(), indent=2))
