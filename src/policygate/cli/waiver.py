"""``policygate waiver add|list|revoke``: time-bound waivers, recorded in the decision log's chain
(the rules live in :mod:`policygate.policy.waivers`). Exit 2 for bad input or a log that cannot be
read or written."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from policygate.cli.common import echo_json, fail, group, opened_log, settings_with
from policygate.cli.options import DbOption, PolicyDirOption, TextOrJson
from policygate.policy.timespec import MAX_WAIVER_DAYS

if TYPE_CHECKING:
    from policygate.config import Settings
    from policygate.decisions.log import DecisionLog
    from policygate.policy import waivers

waiver_app = group(
    help="Time-bound waivers: a rule's deny becomes a warning for one model until the waiver expires.",
)

WaiverFormatOption = Annotated[TextOrJson, typer.Option("--format", "-f")]


def _pushed(settings: Settings, log: DecisionLog) -> str:
    """Running servers pick changes up within 30 s; an external OPA (POLICYGATE_OPA_URL) gets them now."""
    from policygate.engine.errors import EngineError
    from policygate.policy import waiver_sync, waivers

    note = f"servers using this log apply it within {waivers.REFRESH_S:.0f} s"
    if not settings.opa_url:
        return note
    try:
        token = settings.opa_token.get_secret_value() if settings.opa_token else None
        active = waiver_sync.publish_to(settings.opa_url, log, timeout_s=settings.opa_timeout_s, token=token)
    except EngineError as exc:
        return f"{note}; pushing to {settings.opa_url} failed: {exc.message}"
    return f"pushed {len(active)} active waiver(s) to {settings.opa_url}; {note}"


def _waiver_text(v: waivers.WaiverView) -> str:
    targets = ",".join(v.targets) or "all stages"
    line = f"{v.id}  {v.status:<7}  {v.rule:<8} {v.model}  [{targets}]  expires {v.expires}"
    line += f"\n    approved by {v.approved_by}: {v.reason}"
    if v.status == "revoked":
        line += f"\n    revoked {v.revoked_at} by {v.revoked_by or '-'}" + (
            f": {v.revoke_reason}" if v.revoke_reason else ""
        )
    return line


def _user() -> str | None:
    return os.environ.get("GITHUB_ACTOR") or os.environ.get("USER")


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
    fmt: WaiverFormatOption = TextOrJson.text,
    policy_dir: PolicyDirOption = None,
) -> None:
    """Grant a time-bound waiver; recorded in the decision log's chain. The rule id must be one of
    the policy directory's rules (``--policy-dir``: a candidate's, e.g. a rule not yet deployed)."""
    from pydantic import ValidationError

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
            created_by=_user(),
        )
        known = waivers.known_rules(settings.opa_binary, policy_dir or settings.policy_path)
        waiver = waivers.new_waiver(request, known_rules=known)
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}")
    except waivers.WaiverError as exc:
        fail(str(exc))
    with opened_log(settings.db_url, read_only=False, unless="; the waiver was not granted") as log:
        seq = waivers.record_add(log, waiver)
        note = _pushed(settings, log)
    if fmt is TextOrJson.json:
        echo_json({**waiver.model_dump(), "status": "active", "log_seq": seq})
    else:
        view = waivers.WaiverView(**waiver.model_dump(), status="active")
        typer.echo(f"granted (log record {seq}):\n{_waiver_text(view)}\n{note}")


@waiver_app.command("list")
def waiver_list(
    all_: Annotated[bool, typer.Option("--all", help="Include expired and revoked waivers.")] = False,
    db: DbOption = None,
    fmt: WaiverFormatOption = TextOrJson.text,
) -> None:
    """Active waivers (with --all: expired and revoked too), from the decision log."""
    from policygate.policy import waivers

    settings = settings_with(db)
    with opened_log(settings.db_url, read_only=True) as log:
        views = waivers.load_state(log).views(datetime.now(UTC), include_inactive=all_)
    if fmt is TextOrJson.json:
        echo_json({"waivers": [v.model_dump() for v in views]})
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
    from policygate.policy import waivers

    settings = settings_with(db)
    with opened_log(settings.db_url, read_only=False, unless="; the waiver was not revoked") as log:
        try:
            view = waivers.revoke(log, waiver_id, revoked_by=by or _user(), reason=reason)
            note = _pushed(settings, log)
        except (waivers.WaiverNotFound, waivers.WaiverError) as exc:
            fail(str(exc))
    typer.echo(f"revoked:\n{_waiver_text(view)}\n{note}")
