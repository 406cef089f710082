"""``policygate log show``: the governed record of a model (owner, lineage, latest decision per
target, history) or one decision; exit 0 found, 1 nothing recorded, 2 could not read."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from policygate.cli.common import opened_log
from policygate.cli.log.alias import resolved_ref
from policygate.cli.options import DbOption, TextOrJson, TextOrJsonOption

EXIT_NOT_FOUND = 1


def show(
    ref: Annotated[
        str, typer.Argument(help="Model reference (e.g. mlflow:models:/fraud/7) or a decision id.")
    ],
    fmt: TextOrJsonOption = TextOrJson.text,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Recent decisions to include.")] = 20,
    db: DbOption = None,
) -> None:
    """The governed record of a model: owner, risk tier, lineage, latest decision per target, history.

    An alias (mlflow:models:/NAME@ALIAS) shows the version it points at: asked of MLflow
    (MLFLOW_TRACKING_URI) when it answers, else read from the aliases in the recorded evidence;
    the output says which (``alias`` in JSON)."""
    from policygate.decisions.record import governed_record

    with opened_log(db, read_only=True) as log:
        version_ref, resolved = resolved_ref(log, ref)
        record = governed_record(log, version_ref, history=limit)
        single = None if record is not None else log.get(ref)
    if record is None and single is None:
        typer.echo(f"no decision recorded for {ref!r} in {log.safe_url}", err=True)
        if resolved is None and "@" in ref:  # an alias that neither MLflow nor the log resolves
            typer.echo(
                "  (MLflow does not answer or has no such alias, and no recorded evidence shows it)",
                err=True,
            )
        raise typer.Exit(EXIT_NOT_FOUND)
    if record is not None and resolved is not None:
        record = {"alias": resolved.as_dict(), **record}
    if fmt is TextOrJson.json:
        typer.echo(json.dumps(record if record is not None else single, indent=2))
        return
    typer.echo(render_record(record) if record is not None else json.dumps(single, indent=2))


def render_record(record: dict[str, Any]) -> str:
    """Plain text for a terminal: the four questions first, then the history."""
    lines = [f"model      {record['model']}"]
    if record.get("alias"):
        alias = record["alias"]
        lines.insert(0, f"alias      {alias['alias']} -> {alias['ref']} ({alias['note']})")
    own = record.get("ownership") or {}
    lines.append(
        f"owner      {own.get('owner') or '-'}  team {own.get('team') or '-'}  "
        f"risk tier {own.get('risk_tier') or '-'}  use case {own.get('use_case') or '-'}"
    )
    lineage = record.get("lineage") or {}
    run, code = lineage.get("run") or {}, lineage.get("code") or {}
    datasets = ", ".join(
        f"{d.get('name')}@{(d.get('digest') or '-')[:19]}" for d in lineage.get("datasets") or []
    )
    lines.append(
        f"lineage    run {run.get('id') or '-'} ({run.get('status') or '-'})  "
        f"commit {(code.get('commit') or '-')[:12]}  datasets {datasets or '-'}"
    )
    lines.append(f"policy     {record.get('policy_revision') or '-'} (newest release decision)")
    counts = record["decisions"]
    lines.append(
        f"decisions  {counts['total']} "
        f"(allow {counts['allow']}, deny {counts['deny']}, error {counts['error']})"
    )
    lines.append("latest release decision per target (collected evidence; what-ifs are in the history):")
    for stage, d in record["latest_decisions"].items():
        lines.append(
            f"  {stage:<12} {str(d['outcome']).upper():<6} {d['recorded_at']}  {_findings(d)}  "
            f"policy {d['policy_revision'] or '-'}  decision {d['decision_id']}{_change(d)}"
        )
    if record["approvals"]:
        lines.append("approvals seen:")
        for a in record["approvals"]:
            lines.append(
                f"  {a.get('by')} {a.get('decision')} {a.get('stage')} at {a.get('at')} ({a.get('source')})"
            )
    lines.append(f"history (newest first, {len(record['history'])} of {counts['total']}):")
    for d in record["history"]:
        stage = (d.get("target") or {}).get("stage") or "-"
        what_if = "  (what-if: supplied evidence)" if d.get("evidence_origin") == "supplied" else ""
        lines.append(
            f"  {d['seq']:>8} {d['recorded_at']}  {stage:<11} {str(d['outcome']):<5} "
            f"{_findings(d)}  {d['decision_id']}{_change(d)}{what_if}"
        )
    return "\n".join(lines)


def _change(summary: dict[str, Any]) -> str:
    """The change ticket and CI run a decision was asked with, when named."""
    parts = [f"ticket {summary['ticket']}"] if summary.get("ticket") else []
    parts += [f"run {summary['run_url']}"] if summary.get("run_url") else []
    return "".join(f"  {p}" for p in parts)


def _findings(summary: dict[str, Any]) -> str:
    """Deny reasons, then ``warn:`` and ``dry:`` findings (a dry-run rule's record shows here only)."""
    found = list(summary.get("reasons") or [])
    found += [f"warn:{i}" for i in summary.get("warnings") or []]
    found += [f"dry:{i}" for i in summary.get("dryrun") or []]
    return ",".join(found) or "-"
