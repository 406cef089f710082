"""`policygate demo`: start a local MLflow server, register example models, gate each for production."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from policygate.config import Settings
from policygate.decisions.decision import Decision
from policygate.demo.mlflow_server import MlflowServer
from policygate.demo.seed import DEMO_MODELS, register
from policygate.evidence import EvidenceV1, Target
from policygate.output.text_output import render
from policygate.refs import parse
from policygate.runtime import open_service

Echo = Callable[[str], None]


def _table(rows: list[tuple[str, str, Decision]], echo: Echo) -> None:
    echo("")
    echo(f"{'model':<44} {'what is wrong with it':<40} {'outcome':<7} rules")
    echo("-" * 110)
    for ref, description, d in rows:
        ids = ", ".join(r.id for r in d.reasons) or "-"
        echo(f"{ref:<44} {description:<40} {d.outcome:<7} {ids}")


def _quiet_mlflow() -> None:
    """The demo shows policygate's output; MLflow's run links and library warnings would bury it."""
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    import mlflow  # noqa: F401 - configures its loggers on import; quieten them after

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def run_demo(settings: Settings, data_dir: Path, echo: Echo) -> None:
    _quiet_mlflow()
    shutil.rmtree(data_dir / "mlflow", ignore_errors=True)
    started = time.monotonic()
    echo(f"starting a local MLflow server (SQLite under {data_dir / 'mlflow'}) ...")
    with MlflowServer(data_dir / "mlflow") as server:
        echo(f"MLflow at {server.url}; training and registering {len(DEMO_MODELS)} example models ...")
        refs = []
        for spec in DEMO_MODELS:
            chatter = io.StringIO()  # MLflow prints run links and registry notes; keep the demo readable
            with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
                version = register(server.url, spec, train=True)
            ref = (
                f"mlflow:models:/{spec.name}@{spec.alias}"
                if spec.alias
                else f"mlflow:models:/{spec.name}/{version}"
            )
            refs.append((ref, spec.description))
        settings.mlflow_uri = server.url
        rows = []
        with open_service(settings) as service:
            for ref, description in refs:
                echo("")
                echo(f"$ policygate check {ref} --target production --requested-by ci@corp")
                decision = service.decide(parse(ref), Target(stage="production"), "ci@corp")
                echo(render(decision))
                echo(f"(exit {decision.exit_code})")
                rows.append((ref, description or "-", decision))
            chain = service.log.verify()
    _table(rows, echo)
    echo("")
    echo(f"{len(rows)} decisions recorded in {settings.db_url}; MLflow server stopped.")
    state = "intact" if chain.ok else f"BROKEN: {chain.problem}"
    echo(f"decision log: {chain.records} records, hash chain {state} (policygate log verify)")
    echo(f"done in {time.monotonic() - started:.1f} s.")


def run_examples(settings: Settings, examples: Path, echo: Echo) -> None:
    files = sorted(examples.glob("*.json"))
    rows = []
    with open_service(settings) as service:
        for path in files:
            decision = service.evaluate(EvidenceV1.model_validate_json(path.read_text()))
            rows.append((path.stem, "example evidence", decision))
    _table(rows, echo)
