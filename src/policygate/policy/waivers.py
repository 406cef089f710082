"""Time-bound waivers: recorded in the decision log's chain, pushed to OPA as data.

A waiver turns one rule's deny into a warning for one model (exactly, or a glob)
and some target stages, until it expires. ``main.rego`` applies them from
``data.policygate_waivers``; this module owns everything around that:

- validation (an expiry is required, in the future, at most ``MAX_DAYS`` ahead);
- every change (add, revoke) is a ``kind="waiver"`` record in the decision log,
  so who waived what, why and until when is as tamper-evident as the decisions;
- the active set is derived from those records and pushed to OPA by
  :mod:`policygate.policy.waiver_sync`.

Waivers are not part of the policy revision (they are recorded separately); a
decision shows the waivers that applied as ``warnings[].waiver``.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from policygate.decisions.log import DecisionLog
from policygate.engine.catalogue import rules_in
from policygate.engine.errors import EngineError
from policygate.errors import InputError, PolicygateError
from policygate.evidence import STAGES, Stage
from policygate.policy.timespec import (
    MAX_WAIVER_DAYS,
    OPA_TIME_LIMIT,
    TimeSpecError,
    instant_or_duration,
    rfc3339,
)
from policygate.refs import RefError, parse

log = logging.getLogger(__name__)

DATA_PATH = "policygate_waivers"
KIND = "waiver"
MAX_DAYS = MAX_WAIVER_DAYS
REFRESH_S = 30.0
# Records are re-read from this far before the last refresh: covers clock skew between
# replicas and transactions that commit a little after they took their timestamp.
REFRESH_OVERLAP = timedelta(minutes=10)
_PAGE = 500
_RULE_ID = re.compile(r"[A-Z][A-Z0-9]{0,15}-[A-Z0-9]{1,16}")
_GLOB_CHARS = "*?[{"
_PLATFORM_PREFIXES = ("mlflow:models:/", "azureml:")
Status = Literal["active", "expired", "revoked"]


class WaiverError(InputError):
    """A waiver request that cannot be granted; the message names the field and the problem."""


class WaiverNotFound(PolicygateError, LookupError):
    pass


class Waiver(BaseModel):
    """One waiver as recorded; ``policy_doc()`` is what OPA sees."""

    model_config = ConfigDict(extra="forbid")

    id: str
    rule: str = Field(description="Rule id the waiver applies to, e.g. APR-001.")
    model: str = Field(description="Model reference (exact) or glob, e.g. mlflow:models:/fraud-*/*.")
    targets: list[Stage] = Field(default_factory=list, description="Target stages; empty = every stage.")
    reason: str
    approved_by: str
    expires: str = Field(description="RFC 3339 UTC; the waiver has no effect from then on.")
    created_at: str
    created_by: str | None = None

    def policy_doc(self) -> dict[str, Any]:
        return self.model_dump(include={"id", "rule", "model", "targets", "reason", "approved_by", "expires"})

    def expires_at(self) -> datetime:
        return datetime.fromisoformat(self.expires.replace("Z", "+00:00"))


class WaiverView(Waiver):
    """A waiver with its state, for listings."""

    status: Status
    revoked_at: str | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None


# a rule id as people type it, for the OpenAPI document: what policy.params.rule_id() takes (any case,
# spaces around), so the spec and the server agree
RULE_ID_INPUT_PATTERN = r"^\s*[A-Za-z]{2,5}-[0-9]{3}\s*$"


class WaiverRequest(BaseModel):
    """What a person asks for; ``expires`` is RFC 3339 with a zone, or a duration such as 30d."""

    model_config = ConfigDict(extra="forbid")

    rule: str = Field(max_length=64, json_schema_extra={"pattern": RULE_ID_INPUT_PATTERN})
    model: str = Field(max_length=1024)
    targets: list[str] = Field(default_factory=list, max_length=3)
    reason: str = Field(max_length=1000)
    approved_by: str = Field(max_length=320)
    expires: str = Field(max_length=64)
    created_by: str | None = Field(default=None, max_length=320)


def _text(value: str, name: str, limit: int) -> str:
    value = " ".join((value or "").split())
    if not value:
        raise WaiverError(f"{name}: must not be empty")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise WaiverError(f"{name}: control characters are not allowed")
    if len(value) > limit:
        raise WaiverError(f"{name}: longer than {limit} characters")
    return value


def _check_model(pattern: str) -> str:
    pattern = (pattern or "").strip()
    if not pattern:
        raise WaiverError("model: must not be empty")
    wild = [i for i, c in enumerate(pattern) if c in _GLOB_CHARS]
    if not wild:
        try:
            ref = parse(pattern)
        except RefError as exc:
            raise WaiverError(f"model: {exc}") from None
        if ref.version is None:
            raise WaiverError(
                f"model: {pattern!r} names an alias, which moves; name a version "
                "(e.g. mlflow:models:/fraud/7) or a glob (e.g. mlflow:models:/fraud/*)"
            )
        return str(ref)
    prefix = pattern[: wild[0]]
    if not any(prefix.startswith(p) and len(prefix) > len(p) for p in _PLATFORM_PREFIXES):
        raise WaiverError(
            f"model: glob {pattern!r} is too broad: it must start with a platform and part of a model "
            "name before the first wildcard, e.g. mlflow:models:/fraud-*/* or azureml:fraud*"
        )
    if pattern.count("[") != pattern.count("]") or pattern.count("{") != pattern.count("}"):
        raise WaiverError(f"model: glob {pattern!r} has unbalanced brackets or braces")
    return pattern


def _check_targets(targets: Iterable[str]) -> list[Stage]:
    chosen: set[str] = set()
    for t in targets:
        stage = (t or "").strip().lower()
        if stage not in STAGES:
            raise WaiverError(f"targets: unknown stage {t!r}: expected one of {', '.join(STAGES)}")
        chosen.add(stage)
    return [s for s in STAGES if s in chosen]


def known_rules(binary: str, policy_dir: Path) -> list[str]:
    """The rule ids of a policy directory, which a new waiver's rule must be one of; empty (any rule
    id goes) when it holds no policies (e.g. bundles) or its rules cannot be read."""
    if not (policy_dir / "policygate").is_dir():
        return []
    try:
        return [r.id for r in rules_in(binary, policy_dir)]
    except EngineError:
        return []


def check_expiry(text: str, now: datetime) -> datetime:
    """The expiry as UTC: required, in the future, at most MAX_DAYS ahead (and before OPA's 2262 limit)."""
    if not (text or "").strip():
        raise WaiverError("expires: a waiver must expire: give an RFC 3339 time or a duration like 30d")
    try:
        at = instant_or_duration(text, now, future=True).replace(microsecond=0)
    except TimeSpecError as exc:
        raise WaiverError(f"expires: {exc}") from None
    if at <= now:
        raise WaiverError(f"expires: {rfc3339(at)} is not in the future")
    if at > now + timedelta(days=MAX_DAYS) or at >= OPA_TIME_LIMIT:
        raise WaiverError(f"expires: {rfc3339(at)} is more than {MAX_DAYS} days ahead (the maximum)")
    return at


def new_waiver(
    request: WaiverRequest, *, now: datetime | None = None, known_rules: Iterable[str] | None = None
) -> Waiver:
    """Validate a request into a waiver with a fresh id; raises WaiverError naming the problem."""
    now = now or datetime.now(UTC)
    rule = (request.rule or "").strip().upper()
    if not _RULE_ID.fullmatch(rule):
        raise WaiverError(f"rule: {request.rule!r} is not a rule id such as APR-001")
    known = sorted(set(known_rules or []))
    if known and rule not in known:
        raise WaiverError(f"rule: no rule {rule} in the policies (rules: {', '.join(known)})")
    return Waiver(
        id=f"WVR-{uuid.uuid4().hex[:8].upper()}",
        rule=rule,
        model=_check_model(request.model),
        targets=_check_targets(request.targets),
        reason=_text(request.reason, "reason", 1000),
        approved_by=_text(request.approved_by, "approved_by", 320),
        expires=rfc3339(check_expiry(request.expires, now)),
        created_at=rfc3339(now),
        created_by=(request.created_by or "").strip() or None,
    )


class WaiverState:
    """The waivers folded from their log records (order-independent, idempotent)."""

    def __init__(self) -> None:
        self.waivers: dict[str, Waiver] = {}
        self.revoked: dict[str, dict[str, Any]] = {}

    def apply(self, record: dict[str, Any]) -> None:
        action = record.get("action")
        if action == "add":
            try:
                w = Waiver.model_validate(record.get("waiver"))
            except ValidationError:
                log.warning("ignoring malformed waiver record %s", record.get("seq"))
                return
            self.waivers[w.id] = w
        elif action == "revoke" and isinstance(record.get("waiver_id"), str):
            self.revoked[record["waiver_id"]] = record

    def status(self, w: Waiver, now: datetime) -> Status:
        if w.id in self.revoked:
            return "revoked"
        return "active" if w.expires_at() > now else "expired"

    def active(self, now: datetime) -> list[Waiver]:
        return [w for w in self.standing() if w.expires_at() > now]

    def standing(self) -> list[Waiver]:
        """Not revoked, expired or not (the policy compares expiry with each request's time)."""
        return sorted((w for w in self.waivers.values() if w.id not in self.revoked), key=lambda w: w.id)

    def view(self, w: Waiver, now: datetime) -> WaiverView:
        rev = self.revoked.get(w.id) or {}
        return WaiverView(
            **w.model_dump(),
            status=self.status(w, now),
            revoked_at=rev.get("revoked_at"),
            revoked_by=rev.get("revoked_by"),
            revoke_reason=rev.get("reason"),
        )

    def views(self, now: datetime, *, include_inactive: bool = False) -> list[WaiverView]:
        views = [self.view(w, now) for w in sorted(self.waivers.values(), key=lambda w: w.id)]
        return views if include_inactive else [v for v in views if v.status == "active"]


def waiver_records(log_: DecisionLog, since: datetime | None = None) -> list[dict[str, Any]]:
    """Every waiver record (recorded at or after ``since``), oldest first."""
    out: list[dict[str, Any]] = []
    before: int | None = None
    while True:
        page = log_.query(kind=KIND, since=since, before_seq=before, limit=_PAGE)
        out.extend(page)
        if len(page) < _PAGE:
            break
        before = int(page[-1]["seq"])
    out.sort(key=lambda r: int(r["seq"]))
    return out


def load_state(log_: DecisionLog) -> WaiverState:
    state = WaiverState()
    for record in waiver_records(log_):
        state.apply(record)
    return state


def record_add(log_: DecisionLog, waiver: Waiver) -> int:
    """Append the grant to the chain (committed before anyone is told)."""
    return log_.append(KIND, f"waiver:{waiver.id}", {"action": "add", "waiver": waiver.model_dump()})


def revoke(
    log_: DecisionLog,
    waiver_id: str,
    *,
    revoked_by: str | None,
    reason: str | None,
    now: datetime | None = None,
) -> WaiverView:
    """Record the revocation of a waiver; WaiverNotFound / WaiverError when it is unknown or revoked."""
    now = now or datetime.now(UTC)
    wid = (waiver_id or "").strip().upper()
    state = load_state(log_)
    w = state.waivers.get(wid)
    if w is None:
        raise WaiverNotFound(f"no waiver {waiver_id!r}")
    if wid in state.revoked:
        raise WaiverError(f"waiver {wid} was already revoked at {state.revoked[wid].get('revoked_at')}")
    payload = {
        "action": "revoke",
        "waiver_id": wid,
        "revoked_by": (revoked_by or "").strip() or None,
        "reason": " ".join((reason or "").split()) or None,
        "revoked_at": rfc3339(now),
    }
    log_.append(KIND, f"waiver:{wid}:revoked", payload)
    state.apply(payload)
    return state.view(w, now)


__all__ = [
    "EngineError",
    "Waiver",
    "WaiverError",
    "WaiverNotFound",
    "WaiverRequest",
    "WaiverState",
    "WaiverView",
    "check_expiry",
    "known_rules",
    "load_state",
    "new_waiver",
    "record_add",
    "revoke",
    "waiver_records",
]
