"""``policygate demo``: the main job on the embedded default, against a local MLflow server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from policygate.cli.common import settings_with
from policygate.cli.options import DbOption


def demo(
    data_dir: Annotated[Path, typer.Option(help="Where the demo MLflow server keeps its data.")] = Path(
        ".policygate/demo"
    ),
    from_examples: Annotated[
        bool,
        typer.Option("--from-examples", help="Evaluate examples/evidence/*.json instead of MLflow models."),
    ] = False,
    db: DbOption = None,
) -> None:
    """The main job on the embedded default: a local MLflow server, example models, `check` on each."""
    from policygate.demo.run import run_demo, run_examples

    settings = settings_with(db or f"sqlite:///{data_dir}/decisions.db")
    if from_examples:
        run_examples(settings, Path("examples/evidence"), typer.echo)
    else:
        run_demo(settings, data_dir, typer.echo)
