"""policygate command line: exit 0 allow, 1 deny, 2 could not decide (or bad input)."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from pydantic import ValidationError

    from policygate.decisions.decision import Decision
    from policygate.evidence import Change, EvidenceV1, Target
    from policygate.refs import ModelRef

from policygate import jsonload
from policygate.cli_attest import attest_app
from policygate.cli_audit import audit_app
from policygate.cli_auth import approve, token_app
from policygate.cli_bundle import bundle_app
from policygate.cli_common import DbOption, embedding, fail, group, settings_with
from policygate.cli_keys import key_app
from policygate.cli_log import log_app
from policygate.cli_pack import pack_cmd
from policygate.cli_policy import emit_explained, policy_app, replay, waiver_app
from policygate.cli_register import register_cmd
from policygate.cli_revision import policy_show
from policygate.cli_witness import witness

app = group(
    help="Policy-as-code promotion gate for ML models.",
    pretty_exceptions_enable=False,
    add_completion=False,
)


class Format(StrEnum):
    text = "text"
    json = "json"
    junit = "junit"
    github = "github"


FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]


def validation_message(exc: ValidationError, source: str) -> str:
    from policygate.evidence import EvidenceV1

    lines = [f"{source}: evidence does not match {EvidenceV1.model_fields['schema_'].default}:"]
    for err in exc.errors()[:20]:
        where = ".".join(str(p) for p in err["loc"]) or "(document)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def load_evidence(path: Path) -> EvidenceV1:
    """An evidence document from a file, refused clearly when it is too large (the service's body
    limit, POLICYGATE_MAX_BODY_BYTES), nested too deeply, not UTF-8 or not JSON."""
    from pydantic import ValidationError

    from policygate.config import Settings
    from policygate.evidence import EvidenceV1

    limit = Settings().max_body_bytes
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)  # never more: /dev/zero is a file too
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    if len(data) > limit:
        fail(f"{path} is larger than {limit} bytes (POLICYGATE_MAX_BODY_BYTES): not an evidence document")
    try:
        raw: Any = jsonload.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        fail(f"{path} is not UTF-8 text")
    except json.JSONDecodeError as exc:
        fail(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")
    except jsonload.DuplicateKeyError as exc:
        fail(f"{path}: {exc}")
    except RecursionError:
        fail(f"{path}: JSON nested too deeply to be an evidence document")
    if isinstance(raw, dict) and "evidence" in raw and "subject" not in raw:
        raw = raw["evidence"]  # accept the /v1/evaluate request body too
    try:
        return EvidenceV1.model_validate(raw)
    except ValidationError as exc:
        fail(validation_message(exc, str(path)))


@app.command()
def evaluate(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Evidence documents (JSON), e.g. from `policygate evidence collect`; several: one OPA "
            "for all, one result each, exit code the worst of them."
        ),
    ],
    fmt: FormatOption = Format.text,
    db: DbOption = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Also say why: each rule, the evidence it read, OPA's trace.")
    ] = False,
) -> None:
    """Evaluate evidence documents with the policies, record and print each decision.

    Every file is read and validated before anything is decided: a bad one is exit 2, nothing recorded.
    """
    from policygate.decisions.log import LogError
    from policygate.output import many_renderer
    from policygate.runtime import open_service

    if explain and len(files) > 1:
        fail("--explain takes one file at a time")
    documents = [load_evidence(path) for path in files]
    settings = settings_with(db)
    try:
        with open_service(settings) as service:
            decisions = [service.evaluate(evidence) for evidence in documents]
            if explain:
                from policygate.policy.explain import explain as explain_decision

                doc = service.evidence_of(decisions[0].decision_id)  # as decided: claims rebuilt
                why = explain_decision(decisions[0], doc, service.engine, settings.opa_binary)
    except LogError as exc:
        fail(f"{exc}; no decision was made")
    if explain:
        emit_explained(decisions[0], why, fmt.value)
    if len(decisions) == 1:
        emit(decisions[0], fmt)
    results = [(str(f), d) for f, d in zip(files, decisions, strict=True)]
    typer.echo(many_renderer(fmt.value)(results))
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if fmt is Format.github and summary_file:  # as `emit` does for one decision
        from policygate.output.github_output import summary_many

        with open(summary_file, "a", encoding="utf-8") as fh:
            fh.write(summary_many(results) + "\n")
    raise typer.Exit(max(d.exit_code for d in decisions))


class SchemaFormat(StrEnum):
    json = "json"
    markdown = "markdown"


def parse_ref(text: str) -> ModelRef:
    from policygate.refs import RefError, parse

    try:
        return parse(text)
    except RefError as exc:
        fail(str(exc))


def parse_target(stage: str, environment: str | None = None) -> Target:
    from pydantic import ValidationError

    from policygate.evidence import Target

    try:
        return Target(stage=stage.lower(), environment=environment)  # type: ignore[arg-type]
    except ValidationError:
        fail(f"unknown stage {stage!r}: expected one of development, staging, production")


def parse_change(ticket: str | None, run_url: str | None) -> Change:
    """The ticket and run URL, checked as the evidence will hold them (exit 2 naming the option)."""
    from pydantic import ValidationError

    from policygate.evidence import Change

    try:
        return Change(ticket=ticket, run_url=run_url)
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}")


def github_run_url() -> str | None:
    """This GitHub Actions run's page, from the variables GitHub sets in every job (else None)."""
    parts = [os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    if not all(parts):
        return None
    server, repository, run_id = parts
    return f"{str(server).rstrip('/')}/{repository}/actions/runs/{run_id}"


def emit(decision: Decision, fmt: Format) -> NoReturn:
    """Print the decision in the chosen format and exit with its code (0 allow, 1 deny, 2 error)."""
    from policygate.output import renderer

    typer.echo(renderer(fmt.value)(decision))
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if fmt is Format.github and summary_file:
        from policygate.output.github_output import summary

        with open(summary_file, "a", encoding="utf-8") as fh:
            fh.write(summary(decision) + "\n")
    raise typer.Exit(decision.exit_code)


@app.command()
def check(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Model reference, e.g. mlflow:models:/fraud/7 or ...@champion.")],
    target: Annotated[
        str, typer.Option("--target", "-t", help="Target stage: development|staging|production.")
    ],
    requested_by: Annotated[
        str | None,
        typer.Option(
            "--requested-by",
            help="Who asks (default: $GITHUB_ACTOR or $USER). With --server the server's authenticated "
            "caller is the requester; a different --requested-by needs a token with the 'delegate' scope.",
        ),
    ] = None,
    environment: Annotated[str | None, typer.Option(help="Target environment name, e.g. prod-eu.")] = None,
    fmt: FormatOption = Format.text,
    mlflow_uri: Annotated[
        str | None, typer.Option("--mlflow-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI).")
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server", envvar="POLICYGATE_URL", help="Ask a running policygate (central log) instead."
        ),
    ] = None,
    db: DbOption = None,
    ticket: Annotated[
        str | None,
        typer.Option("--ticket", help="Change ticket of this promotion (recorded as request.ticket)."),
    ] = None,
    run_url: Annotated[
        str | None,
        typer.Option(
            "--run-url",
            help="URL of the CI run that asks (recorded as request.run_url). With --format github and no "
            "--run-url: this GitHub Actions run ($GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/"
            "$GITHUB_RUN_ID).",
        ),
    ] = None,
) -> None:
    """Gate a promotion: collect evidence, evaluate, record, print; exit 0 allow, 1 deny, 2 error."""
    from policygate.decisions.log import LogError
    from policygate.runtime import open_runtime

    model = parse_ref(ref)
    stage = parse_target(target, environment)
    change = parse_change(ticket, run_url or (github_run_url() if fmt is Format.github else None))
    who = requested_by or os.environ.get("GITHUB_ACTOR") or os.environ.get("USER")
    if server:
        from policygate.remote import RemoteError, remote_decide

        token = os.environ.get("POLICYGATE_TOKEN")
        asker = requested_by if token else who  # an authenticated caller asks as itself unless told
        try:
            decision = remote_decide(server, str(model), stage, asker, token, change=change)
        except RemoteError as exc:
            fail(str(exc))
        emit(decision, fmt)
    settings = settings_with(db)
    if mlflow_uri:
        settings.mlflow_uri = mlflow_uri
    try:
        with open_runtime(settings, **embedding(ctx)) as runtime:
            decision = runtime.service.decide(model, stage, who, change=change)
    except LogError as exc:
        fail(f"{exc}; no decision was made")
    emit(decision, fmt)


policy_app.command("show")(policy_show)
app.add_typer(policy_app, name="policy")
app.add_typer(waiver_app, name="waiver")
app.command("replay")(replay)

evidence_app = group(help="Evidence documents: collect them for policy authors.")
app.add_typer(evidence_app, name="evidence")
log_app.command("pack")(pack_cmd)
app.add_typer(log_app, name="log")
app.add_typer(audit_app, name="audit")
app.add_typer(attest_app, name="attest")


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
    collector = Collector(
        build_sources(settings, **embedding(ctx)), settings.links, directory=build_directory_of(settings)
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


@app.command()
def schema(
    fmt: Annotated[SchemaFormat, typer.Option("--format", "-f", help="json (JSON Schema) or markdown.")] = (
        SchemaFormat.json
    ),
    params: Annotated[
        bool,
        typer.Option(
            "--params", help="The schema of the policy parameters (data.policygate_params) instead."
        ),
    ] = False,
) -> None:
    """Print the JSON Schema of the evidence document (policygate.evidence/v1), or of the parameters."""
    from policygate.evidence import json_schema

    if params:
        from policygate.policy.params import json_schema as params_schema

        typer.echo(json.dumps(params_schema(), indent=2))
    elif fmt is SchemaFormat.markdown:
        from policygate.schema_doc import markdown

        typer.echo(markdown())
    else:
        typer.echo(json.dumps(json_schema(), indent=2))


@app.command()
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
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@app.command()
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


app.command("witness")(witness)
app.add_typer(token_app, name="token")
app.add_typer(key_app, name="key")
app.add_typer(bundle_app, name="bundle")
app.command("approve")(approve)
app.command("register")(register_cmd)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
