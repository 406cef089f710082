"""``policygate evaluate``: decide on evidence documents (files) with the policies, and record each
decision; exit 0 allow, 1 deny, 2 could not decide (or bad input)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from policygate import jsonload
from policygate.cli.common import deciding, echo_json, emit, fail, settings_with
from policygate.cli.options import DbOption, Format, FormatOption

if TYPE_CHECKING:
    from pydantic import ValidationError

    from policygate.decisions.decision import Decision
    from policygate.evidence import EvidenceV1
    from policygate.policy.explain import Explanation


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
    if explain and len(files) > 1:
        fail("--explain takes one file at a time")
    documents = [load_evidence(path) for path in files]
    settings = settings_with(db)
    with deciding(settings) as runtime:
        service = runtime.service
        decisions = [service.evaluate(evidence) for evidence in documents]
        if explain:
            from policygate.policy.explain import explain as explain_decision

            doc = service.evidence_of(decisions[0].decision_id)  # as decided: claims rebuilt
            why = explain_decision(decisions[0], doc, service.engine, settings.opa_binary)
    from policygate.output import many_renderer

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


def emit_explained(decision: Decision, explanation: Explanation, fmt: str) -> NoReturn:
    """The decision as usual, plus its explanation: after the text, inside the JSON, or on stderr."""
    from policygate.output import renderer
    from policygate.output.explanation import render as render_explanation

    if fmt == "json":
        echo_json({**decision.model_dump(mode="json"), "explanation": explanation.model_dump(mode="json")})
    elif fmt == "text":
        typer.echo(renderer("text")(decision))
        typer.echo(render_explanation(explanation))
    else:  # junit / github: keep stdout machine-readable
        typer.echo(renderer(fmt)(decision))
        typer.echo(render_explanation(explanation), err=True)
    raise typer.Exit(decision.exit_code)
