"""``policygate policy test|check|list|show``: the policy author's commands.

Exit codes: 0 success, 1 tests failed / check refused the policies / the revision is not kept or
altered (``show``), 2 bad input, OPA could not be run or a log that cannot be read.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from policygate.cli.common import (
    echo_json,
    examples_dir_or_default,
    fail,
    group,
    opened_log,
    policy_dir_or_default,
)
from policygate.cli.options import (
    DbOption,
    ExamplesDirOption,
    PolicyDirOption,
    TextOrJson,
    TextOrJsonOption,
)

if TYPE_CHECKING:
    from policygate.policy.report import LoadReport

EXIT_NOT_KEPT = 1

policy_app = group(
    help="Policy authoring: run the Rego tests with coverage, check strictly, list the rules.",
)


class ListFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


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
    fmt: TextOrJsonOption = TextOrJson.text,
    examples_dir: ExamplesDirOption = None,
) -> None:
    """Run the Rego tests (opa test) and the load checks: pass/fail per test, coverage, uncovered
    lines, and what policygate would refuse; exit 1 on a failure or a refusal."""
    from policygate.config import Settings
    from policygate.output import load_report, policy_tests
    from policygate.policy import authoring

    path = policy_dir_or_default(policy_dir)
    binary = Settings().opa_binary
    try:
        tests = authoring.run_tests(binary, path)
    except authoring.AuthoringError as exc:
        fail(str(exc))
    loaded = _loaded(binary, path, examples_dir_or_default(policy_dir, examples_dir))
    ok = tests.ok and loaded.ok
    if fmt is TextOrJson.json:
        echo_json({**tests.to_dict(), "ok": ok, "load": loaded.to_dict()})
    else:  # the load checks go before the verdict, which covers both
        typer.echo(policy_tests.render(tests, verdict=False))
        typer.echo(load_report.render(loaded), err=not loaded.ok)
        typer.echo("PASS" if ok else "FAIL")
    raise typer.Exit(0 if ok else 1)


@policy_app.command("check")
def policy_check(
    policy_dir: PolicyDirOption = None,
    fmt: TextOrJsonOption = TextOrJson.text,
    examples_dir: ExamplesDirOption = None,
) -> None:
    """Every check policygate runs before it loads policies (opa check --strict with the evidence
    schema, rule metadata, parameter schema, evidence paths, each rule denies its example): errors
    with file and line; exit 1 when the directory would be refused."""
    from policygate.config import Settings
    from policygate.output import load_report

    path = policy_dir_or_default(policy_dir)
    report = _loaded(Settings().opa_binary, path, examples_dir_or_default(policy_dir, examples_dir))
    if fmt is TextOrJson.json:
        echo_json(report.to_dict())
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
    from policygate.policy.serving import start_engine

    settings = Settings()
    opa_url = None if policy_dir else settings.opa_url
    path = policy_dir_or_default(policy_dir) if policy_dir or not opa_url else settings.policy_path
    try:
        with start_engine(
            opa_url,
            settings.opa_binary,
            path,
            settings.opa_timeout_s,
            examples_dir=examples_dir_or_default(policy_dir, None),
        ) as engine:
            cat = authoring.catalogue(engine)
    except EngineError as exc:
        fail(exc.message)
    if fmt is ListFormat.json:
        echo_json(cat.to_dict())
    elif fmt is ListFormat.markdown:
        typer.echo(catalogue.render_markdown(cat))
    else:
        typer.echo(catalogue.render_text(cat))


@policy_app.command("show")
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
    fmt: TextOrJsonOption = TextOrJson.text,
    db: DbOption = None,
) -> None:
    """The policy files (modules and data) that decided under a revision, exactly as kept in the log;
    their digest is recomputed and must be the revision. Exit 1 when not kept or altered."""
    from policygate.policy.revisions import REVISION, RevisionError, kept

    if not REVISION.fullmatch(revision):
        fail(f"--revision: {revision[:80]!r} is not a policy revision (sha256: and 64 hex digits)")
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        fail(f"--out: {out} exists and is not an empty directory")
    with opened_log(db, read_only=True) as log:
        try:
            files = kept(log, revision)
        except RevisionError as exc:
            typer.echo(f"{exc} (in {log.safe_url})", err=True)
            raise typer.Exit(EXIT_NOT_KEPT) from None
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
