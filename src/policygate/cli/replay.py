"""``policygate replay``: re-evaluate recorded decisions with candidate policies, in an OPA of their
own (:mod:`policygate.policy.replay`); nothing is recorded.

Exit codes: 0 nothing would change; 1 an outcome would flip or deny reasons change; 3 only warning
or dry-run changes; 2 bad input, the candidate refused or OPA could not be run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from policygate.cli.common import echo_json, fail, opened_log, settings_with
from policygate.cli.options import DbOption, ExamplesDirOption, TextOrJson, TextOrJsonOption


def replay(
    policy_dir: Annotated[
        Path, typer.Option("--policy-dir", help="Candidate policy directory (policygate/*.rego, data.json).")
    ],
    since: Annotated[
        str,
        typer.Option("--since", help="Decisions recorded since: a duration (30d, 12h), RFC 3339, or all."),
    ] = "30d",
    model: Annotated[str | None, typer.Option("--model", help="Only this model version.")] = None,
    fmt: TextOrJsonOption = TextOrJson.text,
    db: DbOption = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=32, help="Parallel OPA queries.")] = 4,
    examples_dir: ExamplesDirOption = None,
) -> None:
    """Re-evaluate recorded decisions with candidate policies (separate OPA, checked like any load).

    Exit 0: nothing would change; 1: an outcome would flip (allow/deny/error) or deny reasons change;
    3: only warnings or dry-run findings would change; 2: bad input or the candidate is refused."""
    from policygate.engine.errors import EngineError
    from policygate.output import load_report
    from policygate.output.replay_report import render
    from policygate.policy.replay import CandidateRefused, load_candidate, since_of
    from policygate.policy.replay import replay as run_replay
    from policygate.policy.timespec import TimeSpecError
    from policygate.refs import RefError, parse

    if not (policy_dir / "policygate").is_dir():
        fail(f"candidate policy directory {policy_dir} has no policygate/ package directory")
    try:
        start = since_of(since, datetime.now(UTC))
    except TimeSpecError as exc:
        fail(f"--since: {exc}")
    model_ref = None
    if model:
        try:
            ref = parse(model)
        except RefError as exc:
            fail(f"--model: {exc}")
        if ref.version is None:
            fail(f"--model: {model!r} is an alias; the log records versions, e.g. mlflow:models:/fraud/7")
        model_ref = str(ref)
    settings = settings_with(db)
    try:
        candidate = load_candidate(
            settings.opa_binary, policy_dir, examples_dir, timeout_s=settings.opa_timeout_s
        )
    except CandidateRefused as exc:
        fail(f"candidate policies in {policy_dir} are refused:\n{load_report.render(exc.report)}")
    with opened_log(settings.db_url, read_only=True) as log:
        try:
            with candidate as engine:
                report = run_replay(
                    log, engine, candidate=str(policy_dir), since=start, model=model_ref, workers=workers
                )
        except EngineError as exc:
            fail(f"candidate policies in {policy_dir}: {exc.message}")
    if fmt is TextOrJson.json:
        echo_json(report.to_dict())
    else:
        typer.echo(render(report))
    raise typer.Exit(report.exit_code)
