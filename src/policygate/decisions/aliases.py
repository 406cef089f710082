"""Which version an alias reference (``mlflow:models:/NAME@ALIAS``) means, for reading the log.

Decisions are recorded under the version they were made on, never under an alias. Asked about an
alias, readers (``log show``, ``log export --model``, the console, ``GET /v1/models/...``) ask the
source first; when it does not answer, the newest recorded evidence that shows the alias on a
version of that model answers instead, and says so (the alias may have moved since).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select

from policygate.decisions.log import DecisionLog
from policygate.decisions.schema import Record
from policygate.refs import ModelRef, RefError, parse
from policygate.sources.base import SourceError

EVIDENCE_SEARCH = 500  # newest decisions about the model looked through for its aliases
Lookup = Callable[[str, str], str | None]  # (name, alias) -> version; None: the source has no such alias


@dataclass(frozen=True)
class Resolved:
    alias_ref: str  # as asked, e.g. mlflow:models:/fraud@champion
    ref: str  # the version it points at, as the log records it
    via: Literal["source", "log"]
    note: str  # how it was resolved: the reader is told

    def as_dict(self) -> dict[str, str]:
        return {"alias": self.alias_ref, "ref": self.ref, "via": self.via, "note": self.note}


def alias_of(text: str) -> ModelRef | None:
    """The parsed reference when ``text`` is an MLflow alias reference, else None."""
    try:
        ref = parse(text)
    except RefError:
        return None
    return ref if ref.alias else None


def resolve(
    log: DecisionLog, ref: ModelRef, lookup: Lookup | None, source_name: str = "MLflow"
) -> Resolved | None:
    """The version ``ref`` (an alias) points at: through ``lookup`` when the source answers, else from
    the aliases recorded in the evidence of the newest decision that shows it. None: neither knows."""
    asked = str(ref)
    unanswered = f"{source_name} is not configured"
    if lookup is not None and ref.alias:
        try:
            version = lookup(ref.name, ref.alias)
        except SourceError as exc:
            unanswered = f"{source_name} did not answer ({exc})"
        else:
            if version is not None:
                return Resolved(
                    asked, str(ref.with_version(version)), "source", f"resolved through {source_name}"
                )
            unanswered = f"{source_name} has no alias {ref.alias!r} on {ref.name!r} now"
    found = _recorded(log, ref)
    if found is None:
        return None
    version, decision_id, recorded_at = found
    return Resolved(
        asked,
        str(ref.with_version(version)),
        "log",
        f"{unanswered}: from the decision log, where the evidence of decision {decision_id} "
        f"({recorded_at}) shows {ref.alias!r} on version {version}; it may have moved since",
    )


def _recorded(log: DecisionLog, ref: ModelRef) -> tuple[str, str, str] | None:
    """(version, decision id, recorded at) of the newest decision whose evidence shows the alias."""
    prefix = str(ref.with_version("0"))[: -len("0")]  # mlflow:models:/NAME/
    stmt = (
        select(Record.body)
        .where(Record.kind == "decision", Record.model_ref.startswith(prefix, autoescape=True))
        .order_by(Record.seq.desc())
        .limit(EVIDENCE_SEARCH)
    )
    with log.engine.connect() as conn:
        bodies = conn.execute(stmt).scalars().all()
    for body in bodies:
        record = json.loads(body)
        evidence = record.get("evidence") or {}
        decision = record.get("decision") or {}
        subject = evidence.get("subject") if isinstance(evidence, dict) else None
        if decision.get("evidence_origin") == "supplied" or not isinstance(subject, dict):
            continue  # a what-if's evidence is whatever its caller wrote
        if (
            subject.get("name") == ref.name
            and ref.alias in (subject.get("aliases") or [])
            and subject.get("version")
        ):
            return str(subject["version"]), str(decision.get("decision_id")), str(record.get("recorded_at"))
    return None


def for_reading(log: DecisionLog, text: str, lookup: Lookup | None) -> tuple[str, Resolved | None]:
    """The reference to read the log under: an alias resolved (and how), anything else as given."""
    alias = alias_of(text)
    if alias is None:
        return text, None
    resolved = resolve(log, alias, lookup)
    return (resolved.ref if resolved is not None else text), resolved


def source_lookup(source: object) -> Lookup | None:
    """The alias lookup of a configured MLflow source (the service's own), or None."""
    from policygate.sources.mlflow import MlflowSource
    from policygate.sources.mlflow.aliases import version_of_alias

    if not isinstance(source, MlflowSource):
        return None
    return lambda name, alias: version_of_alias(source, name, alias)


def uri_lookup(uri: str | None, timeout_s: float = 5.0) -> Lookup | None:
    """An alias lookup on the MLflow at ``uri`` (made on first use: reading the log needs no MLflow)."""
    if not uri:
        return None

    def lookup(name: str, alias: str) -> str | None:
        from policygate.sources.mlflow import MlflowSource
        from policygate.sources.mlflow.aliases import version_of_alias

        return version_of_alias(MlflowSource(uri, timeout_s=timeout_s, cache_ttl_s=0), name, alias)

    return lookup


@dataclass(frozen=True)
class AliasSeen:
    """One observation of an alias on a version: ``version`` None means the alias was not there."""

    at: str
    alias: str
    version: str | None
    seen_by: Literal["webhook", "audit"]
    record: str  # the delivery or audit run record it was seen in


DELIVERY_SEARCH = 500  # newest webhook deliveries about the model read for its alias events


def delivered_aliases(log: DecisionLog, ref: ModelRef) -> list[AliasSeen]:
    """The alias events policygate recorded as webhook deliveries for any version of ``ref``'s model,
    oldest first: each says the alias was set on that version when the delivery arrived."""
    prefix = str(ref.with_version("0"))[: -len("0")]  # mlflow:models:/NAME/
    stmt = (
        select(Record.body)
        .where(Record.kind == "delivery", Record.model_ref.startswith(prefix, autoescape=True))
        .order_by(Record.seq.desc())
        .limit(DELIVERY_SEARCH)
    )
    with log.engine.connect() as conn:
        bodies = [json.loads(b) for b in conn.execute(stmt).scalars().all()]
    seen: list[AliasSeen] = []
    for body in reversed(bodies):
        delivery = body.get("delivery") or {}
        if not delivery.get("alias") or not str(delivery.get("event", "")).startswith("model_version_alias"):
            continue
        try:
            version = parse(str(delivery.get("ref"))).version
        except RefError:
            continue
        at = str(delivery.get("received_at") or body.get("recorded_at") or "")
        seen.append(AliasSeen(at, str(delivery["alias"]), str(version), "webhook", str(delivery.get("key"))))
    return seen
