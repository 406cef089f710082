"""The policy author's commands: ``policy test|check|list``, ``waiver add|list|revoke``, ``replay``.

Exit codes: 0 success (replay: nothing would change), 1 tests failed / check refused the
policies / replay found an outcome or deny-reason change, 3 replay found only warning or dry-run
changes, 2 bad input or OPA could not be run.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from policygate.policy.timespec import MAX_WAIVER_DAYS

if TYPE_CHECKING:
    from policygate.config import Settings
    from policygate.decisions.decision import Decision
    from policygate.decisions.log import DecisionLog
    from policygate.policy import waivers
    from policygate.policy.explain import Explanation
    from policygate.policy.load import LoadReport

from policygate.cli_common import DbOption, TextOrJson, fail, group, open_log, settings_with

policy_app = group(
    help="Policy authoring: run the Rego tests with coverage, check strictly, list the rules.",
)
waiver_app = group(
    help="Time-bound waivers: a rule's deny becomes a warning for one model until the waiver expires.",
)


class ListFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


ReportFormatOption = Annotated[TextOrJson, typer.Option("--format", "-f", help="text or json.")]
PolicyDirOption = Annotated[
    Path | None,
    typer.Option("--policy-dir", help="Policy directory (default: POLICYGATE_POLICY_DIR or ./rego)."),
]


def _policy_dir(policy_dir: Path | None) -> Path:
    from policygate.config import Settings

    path = policy_dir or Settings().policy_path
    if not path.is_dir():
        fail(f"policy directory {path} does not exist")
    return path


def _echo_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


# ---------------------------------------------------------------------------
# policy test | check | list
# ---------------------------------------------------------------------------


ExamplesDirOption = Annotated[
    Path | None,
    typer.Option(
        "--examples-dir",
        help="Example documents <RULE-ID>.json each rule must deny (default: POLICYGATE_EXAMPLES_DIR or "
        "examples/evidence beside the policy directory).",
    ),
]


def _examples_dir(policy_dir: Path | None, examples_dir: Path | None) -> Path | None:
    from policygate.config import Settings

    if examples_dir is not None:
        return examples_dir
    settings = Settings()
    return settings.examples_dir if policy_dir is None or settings.examples_dir else None


def _loaded(binary: str, policy_dir: Path, examples_dir: Path | None) -> LoadReport:
    """Every load check on the directory (the OPA it starts is stopped again)."""
    from policygate.policy.load import load_policy

    report, engine = load_policy(binary, policy_dir, examples_dir)
    if engine is not None:
        engine.close()
    return report


@policy_app.command("test")
def policy_test(
    policy_dir: PolicyDirOption = None,
    fmt: ReportFormatOption = TextOrJson.text,
    examples_dir: ExamplesDirOption = None,
) -> None:
    """Run the Rego tests (opa test) and the load checks: pass/fail per test, coverage, uncovered
    lines, and what policygate would refuse; exit 1 on a failure or a refusal."""
    from policygate.config import Settings
    from policygate.output import load_report, policy_tests
    from policygate.policy import authoring

    path = _policy_dir(policy_dir)
    binary = Settings().opa_binary
    try:
        tests = authoring.run_tests(binary, path)
    except authoring.AuthoringError as exc:
        fail(str(exc))
    loaded = _loaded(binary, path, _examples_dir(policy_dir, examples_dir))
    ok = tests.ok and loaded.ok
    if fmt is TextOrJson.json:
        _echo_json({**tests.to_dict(), "ok": ok, "load": loaded.to_dict()})
    else:  # the load checks go before the verdict, which covers both
        typer.echo(policy_tests.render(tests, verdict=False))
        typer.echo(load_report.render(loaded), err=not loaded.ok)
        typer.echo("PASS" if ok else "FAIL")
    raise typer.Exit(0 if ok else 1)


@policy_app.command("check")
def policy_check(
    policy_dir: PolicyDirOption = None,
    fmt: ReportFormatOption = TextOrJson.text,
    examples_dir: ExamplesDirOption = None,
) -> None:
    """Every check policygate runs before it loads policies (opa check --strict with the evidence
    schema, rule metadata, parameter schema, evidence paths, each rule denies its example): errors
    with file and line; exit 1 when the directory would be refused."""
    from policygate.config import Settings
    from policygate.output import load_report

    path = _policy_dir(policy_dir)
    report = _loaded(Settings().opa_binary, path, _examples_dir(policy_dir, examples_dir))
    if fmt is TextOrJson.json:
        _echo_json(report.to_dict())
    else:
        typer.echo(load_report.render(report), err=not report.ok)
    raise typer.Exit(0 if report.ok else 1)


@policy_app.command("list")
def policy_list(
    policy_dir: PolicyDirOption = None,
    fmt: Annotated[
        ListFormat, typer.Option("--format", "-f", help="text, json or markdown (the docs' rule table).")
    ] = ListFormat.text,
) -> None:
    """The policy revision and every rule: id, title, severity, mode (enforce|warn|dryrun), controls."""
    from policygate.config import Settings
    from policygate.engine.errors import EngineError
    from policygate.output import catalogue
    from policygate.policy import authoring
    from policygate.runtime.engines import start_engine

    settings = Settings()
    opa_url = None if policy_dir else settings.opa_url
    path = _policy_dir(policy_dir) if policy_dir or not opa_url else settings.policy_path
    try:
        with start_engine(
            opa_url,
            settings.opa_binary,
            path,
            settings.opa_timeout_s,
            examples_dir=_examples_dir(policy_dir, None),
        ) as engine:
            cat = authoring.catalogue(engine)
    except EngineError as exc:
        fail(exc.message)
    if fmt is ListFormat.json:
        _echo_json(cat.to_dict())
    elif fmt is ListFormat.markdown:
        typer.echo(catalogue.render_markdown(cat))
    else:
        typer.echo(catalogue.render_text(cat))


# ---------------------------------------------------------------------------
# evaluate --explain (called from cli.evaluate)
# ---------------------------------------------------------------------------


def emit_explained(decision: Decision, explanation: Explanation, fmt: str) -> NoReturn:
    """The decision as usual, plus its explanation: after the text, inside the JSON, or on stderr."""
    from policygate.output import renderer
    from policygate.output.explanation import render as render_explanation

    if fmt == "json":
        _echo_json({**decision.model_dump(mode="json"), "explanation": explanation.model_dump(mode="json")})
    elif fmt == "text":
        typer.echo(renderer("text")(decision))
        typer.echo(render_explanation(explanation))
    else:  # junit / github: keep stdout machine-readable
        typer.echo(renderer(fmt)(decision))
        typer.echo(render_explanation(explanation), err=True)
    raise typer.Exit(decision.exit_code)


# ---------------------------------------------------------------------------
# waiver add | list | revoke
# ---------------------------------------------------------------------------


def _push_external(settings: Settings, log: DecisionLog) -> str:
    """Running servers pick changes up within 30 s; an external OPA (POLICYGATE_OPA_URL) gets them now."""
    from policygate.engine.errors import EngineError
    from policygate.engine.opa import OpaEngine
    from policygate.policy import waiver_sync, waivers

    note = f"servers using this log apply it within {waivers.REFRESH_S:.0f} s"
    if not settings.opa_url:
        return note
    try:
        token = settings.opa_token.get_secret_value() if settings.opa_token else None
        engine = OpaEngine(settings.opa_url, settings.opa_timeout_s, token=token)
        try:
            active = waiver_sync.publish(engine, log)
        finally:
            engine.close()
    except EngineError as exc:
        return f"{note}; pushing to {settings.opa_url} failed: {exc.message}"
    return f"pushed {len(active)} active waiver(s) to {settings.opa_url}; {note}"


def _known_rules(settings: Settings, policy_dir: Path | None = None) -> list[str]:
    """Rule ids of the policy directory (``--policy-dir``, a candidate, else the configured one;
    empty when there is none, e.g. bundles)."""
    from policygate.engine.catalogue import rules_in
    from policygate.engine.errors import EngineError

    path = policy_dir or settings.policy_path
    if not (path / "policygate").is_dir():
        return []
    try:
        return [r.id for r in rules_in(settings.opa_binary, path)]
    except EngineError:
        return []


def _waiver_text(v: waivers.WaiverView) -> str:
    targets = ",".join(v.targets) or "all stages"
    line = f"{v.id}  {v.status:<7}  {v.rule:<8} {v.model}  [{targets}]  expires {v.expires}"
    line += f"\n    approved by {v.approved_by}: {v.reason}"
    if v.status == "revoked":
        line += f"\n    revoked {v.revoked_at} by {v.revoked_by or '-'}" + (
            f": {v.revoke_reason}" if v.revoke_reason else ""
        )
    return line


@waiver_app.command("add")
def waiver_add(
    rule: Annotated[str, typer.Option("--rule", help="Rule id, e.g. APR-001.")],
    model: Annotated[
        str, typer.Option("--model", help="Model version ref, or a glob such as mlflow:models:/fraud-*/*.")
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why the exception is acceptable.")],
    approved_by: Annotated[str, typer.Option("--approved-by", help="Who approved the exception.")],
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires",
            help=f"Required: RFC 3339 time (2026-12-31T23:59:59Z) or duration (30d); at most "
            f"{MAX_WAIVER_DAYS} days.",
        ),
    ] = None,
    target: Annotated[
        list[str] | None,
        typer.Option("--target", "-t", help="Target stage (repeatable); default: every stage."),
    ] = None,
    db: DbOption = None,
    fmt: Annotated[TextOrJson, typer.Option("--format", "-f")] = TextOrJson.text,
    policy_dir: PolicyDirOption = None,
) -> None:
    """Grant a time-bound waiver; recorded in the decision log's chain. The rule id must be one of
    the policy directory's rules (``--policy-dir``: a candidate's, e.g. a rule not yet deployed)."""
    from pydantic import ValidationError

    from policygate.decisions.log import LogError
    from policygate.policy import waivers

    settings = settings_with(db)
    try:
        request = waivers.WaiverRequest(
            rule=rule,
            model=model,
            targets=target or [],
            reason=reason,
            approved_by=approved_by,
            expires=expires or "",
            created_by=os.environ.get("GITHUB_ACTOR") or os.environ.get("USER"),
        )
        waiver = waivers.new_waiver(request, known_rules=_known_rules(settings, policy_dir))
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}")
    except waivers.WaiverError as exc:
        fail(str(exc))
    log = open_log(settings.db_url, read_only=False)
    try:
        seq = waivers.record_add(log, waiver)
        note = _push_external(settings, log)
    except LogError as exc:
        fail(f"{exc}; the waiver was not granted")
    finally:
        log.close()
    if fmt is TextOrJson.json:
        _echo_json({**waiver.model_dump(), "status": "active", "log_seq": seq})
    else:
        view = waivers.WaiverView(**waiver.model_dump(), status="active")
        typer.echo(f"granted (log record {seq}):\n{_waiver_text(view)}\n{note}")


@waiver_app.command("list")
def waiver_list(
    all_: Annotated[bool, typer.Option("--all", help="Include expired and revoked waivers.")] = False,
    db: DbOption = None,
    fmt: Annotated[TextOrJson, typer.Option("--format", "-f")] = TextOrJson.text,
) -> None:
    """Active waivers (with --all: expired and revoked too), from the decision log."""
    from policygate.decisions.log import LogError
    from policygate.policy import waivers

    settings = settings_with(db)
    log = open_log(settings.db_url, read_only=True)
    try:
        views = waivers.load_state(log).views(datetime.now(UTC), include_inactive=all_)
    except LogError as exc:
        fail(str(exc))
    finally:
        log.close()
    if fmt is TextOrJson.json:
        _echo_json({"waivers": [v.model_dump() for v in views]})
    elif not views:
        typer.echo("no active waivers" if not all_ else "no waivers recorded")
    else:
        typer.echo("\n".join(_waiver_text(v) for v in views))


@waiver_app.command("revoke")
def waiver_revoke(
    waiver_id: Annotated[str, typer.Argument(help="Waiver id, e.g. WVR-1A2B3C4D.")],
    by: Annotated[str | None, typer.Option("--by", help="Who revokes it (default: $USER).")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why.")] = None,
    db: DbOption = None,
) -> None:
    """End a waiver now; recorded in the decision log's chain."""
    from policygate.decisions.log import LogError
    from policygate.policy import waivers

    settings = settings_with(db)
    log = open_log(settings.db_url, read_only=False)
    try:
        view = waivers.revoke(
            log,
            waiver_id,
            revoked_by=by or os.environ.get("GITHUB_ACTOR") or os.environ.get("USER"),
            reason=reason,
        )
        note = _push_external(settings, log)
    except waivers.WaiverNotFound as exc:
        fail(str(exc))
    except waivers.WaiverError as exc:
        fail(str(exc))
    except LogError as exc:
        fail(f"{exc}; the waiver was not revoked")
    finally:
        log.close()
    typer.echo(f"revoked:\n{_waiver_text(view)}\n{note}")


# ---------------------------------------------------------------------------
# replay
# ---------------------------------------------------------------------------


def replay(
    policy_dir: Annotated[
        Path, typer.Option("--policy-dir", help="Candidate policy directory (policygate/*.rego, data.json).")
    ],
    since: Annotated[
        str,
        typer.Option("--since", help="Decisions recorded since: a duration (30d, 12h), RFC 3339, or all."),
    ] = "30d",
    model: Annotated[str | None, typer.Option("--model", help="Only this model version.")] = None,
    fmt: ReportFormatOption = TextOrJson.text,
    db: DbOption = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=32, help="Parallel OPA queries.")] = 4,
    examples_dir: ExamplesDirOption = None,
) -> None:
    """Re-evaluate recorded decisions with candidate policies (separate OPA, checked like any load).

    Exit 0: nothing would change; 1: an outcome would flip (allow/deny/error) or deny reasons change;
    3: only warnings or dry-run findings would change; 2: bad input or the candidate is refused."""
    from policygate.decisions.log import LogError
    from policygate.engine.errors import EngineError
    from policygate.output import load_report
    from policygate.output.replay_report import render
    from policygate.policy.load import load_policy
    from policygate.policy.replay import replay as run_replay
    from policygate.policy.timespec import TimeSpecError, instant_or_duration
    from policygate.refs import RefError, parse

    if not (policy_dir / "policygate").is_dir():
        fail(f"candidate policy directory {policy_dir} has no policygate/ package directory")
    start: datetime | None = None
    if since.strip().lower() != "all":
        try:
            start = instant_or_duration(since, datetime.now(UTC), future=False)
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
    loaded, candidate = load_policy(
        settings.opa_binary, policy_dir, examples_dir, timeout_s=settings.opa_timeout_s
    )
    if candidate is None:
        fail(f"candidate policies in {policy_dir} are refused:\n{load_report.render(loaded)}")
    log = open_log(settings.db_url, read_only=True)
    try:
        with candidate as engine:
            report = run_replay(
                log, engine, candidate=str(policy_dir), since=start, model=model_ref, workers=workers
            )
    except EngineError as exc:
        fail(f"candidate policies in {policy_dir}: {exc.message}")
    except LogError as exc:
        fail(str(exc))
    finally:
        log.close()
    if fmt is TextOrJson.json:
        _echo_json(report.to_dict())
    else:
        typer.echo(render(report))
    raise typer.Exit(report.exit_code)


__all__ = ["emit_explained", "policy_app", "replay", "waiver_app"]
