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
    the output says which (``alias`` in JSON).

    What is true now is shown too: each approval's state (withdrawn, rejected, unverified, standing),
    who sent each decision, whether the owner changed since the release, the alias moves policygate
    saw (MLflow keeps no alias history) and, for a model in use with no decision, the audit's view."""
    from policygate.audit.now import record_now

    with opened_log(db, read_only=True) as log:
        version_ref, resolved = resolved_ref(log, ref)
        record = record_now(log, version_ref, history=limit)
        single = None if record is not None else log.get(ref)
    if record is None and single is None:
        typer.echo(
            f"no decision recorded for {ref!r} in {log.safe_url}, nor seen by the latest audit run", err=True
        )
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
    lines += _owner_changed(record.get("owner_since_release") or {})
    if record.get("no_release_decision"):
        lines.append(
            "decision   IN USE, NO RELEASE DECISION (a bypass: what the latest audit run saw is below)"
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
            f"policy {d['policy_revision'] or '-'}  decision {d['decision_id']}  "
            f"sent by {d.get('sent_by') or '-'}{_change(d)}"
        )
    lines += _approvals_now(record.get("approvals_now") or [])
    lines += _in_use(record.get("in_use") or [])
    lines += _in_use(record.get("last_in_use") or [], "was in use")
    lines += _alias_moves(record)
    lines += _lifecycle(record.get("lifecycle") or [], retired=bool(record.get("retired")))
    lines.append(f"history (newest first, {len(record['history'])} of {counts['total']}):")
    for d in record["history"]:
        stage = (d.get("target") or {}).get("stage") or "-"
        what_if = "  (what-if: supplied evidence)" if d.get("evidence_origin") == "supplied" else ""
        lines.append(
            f"  {d['seq']:>8} {d['recorded_at']}  {stage:<11} {str(d['outcome']):<5} "
            f"{_findings(d)}  {d['decision_id']}  sent by {d.get('sent_by') or '-'}{_change(d)}{what_if}"
        )
    return "\n".join(lines)


def _lifecycle(events: list[dict[str, Any]], *, retired: bool) -> list[str]:
    """Owner reviews, retirement and un-retirement, oldest first, with who and when."""
    if not events:
        return []
    lines = [f"lifecycle ({len(events)}, oldest first):"]
    for e in events:
        said = f": {e['reason_or_note']}" if e.get("reason_or_note") else ""
        lines.append(
            f"  {e['at']}  {str(e['kind']).upper():<9} by {e['by']} (sent by {e.get('caller') or '-'}){said}"
        )
    if retired:
        lines.append("  RETIRED: LIF-001 denies this version for every target")
    return lines


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


def _owner_changed(owner: dict[str, Any]) -> list[str]:
    """The owner at release against the newest evidence seen, and where each came from."""
    then, now = owner.get("at_release"), owner.get("now")
    if not owner.get("changed") or not then or not now:
        return []
    return [
        f"OWNER CHANGED SINCE RELEASE: {then.get('owner') or '(none)'} in release decision {then.get('id')} "
        f"({then.get('at')}) -> {now.get('owner') or '(none)'} in {now.get('source')} {now.get('id')} "
        f"({now.get('at')})"
    ]


def _approvals_now(approvals: list[dict[str, Any]]) -> list[str]:
    """Each approval with its state now: a withdrawn one says when, by whom and why."""
    if not approvals:
        return []
    lines = ["approvals now (the reviewer's latest entry per stage wins):"]
    for a in approvals:
        line = f"  {str(a.get('state')).upper():<10} {a.get('by')} {a.get('decision')} {a.get('stage')} at "
        line += f"{a.get('at')} ({a.get('source') or '-'}{'' if a.get('verified') else ', not verified'})"
        taken = a.get("taken_back")
        if taken:
            line += (
                f"; {taken.get('decision')} at {taken.get('at')} by {taken.get('by')}"
                f"{' sent by ' + taken['sent_by'] if taken.get('sent_by') else ''}"
                f"{': ' + taken['reason'] if taken.get('reason') else ''}"
            )
        elif a.get("state") == "unverified":
            line += "; not recorded by policygate from an authenticated caller"
        lines.append(line)
    return lines


def _in_use(in_use: list[dict[str, Any]], label: str = "in use") -> list[str]:
    """Where the latest audit run (or, ``was in use``, an earlier one) found the version, and what it saw."""
    lines = []
    for u in in_use:
        found = "; ".join(f"{f['kind']}:{','.join(f.get('reasons') or [])}" for f in u.get("findings") or [])
        lines.append(
            f"{label:<10} {u.get('target')} via {u.get('via')}  owner {u.get('owner') or '-'}  "
            f"audit {u.get('audit_outcome') or '-'}  findings {found or '-'}  "
            f"(audit run {u.get('run_id')} at {u.get('audited_at')})"
        )
    return lines


def _alias_moves(record: dict[str, Any]) -> list[str]:
    """The alias moves policygate saw, and what it cannot have seen."""
    moves = record.get("alias_moves")
    if moves is None:
        return []
    lines = [f"alias moves seen ({len(moves)}):"]
    for m in moves:
        lines.append(
            f"  {m.get('at')}  {m.get('alias')}  {m.get('from_version') or '?'} -> "
            f"{m.get('to_version') or '(removed)'}  seen by {m.get('seen_by')} ({m.get('record')})"
        )
    lines.append(f"  note: {record.get('alias_moves_note')}")
    return lines
