"""What the audit judged a model in use on, and what the directory said of its owner: read by the
register, the owners report and the governed record alike, so all three answer from the same document."""

from __future__ import annotations

from typing import Any, Literal

from policygate.decisions.log import DecisionLog

OwnerStatus = Literal["active", "disabled", "left", "unknown", "service", "not checked"]


def judged_document(
    log: DecisionLog, documents: dict[str, Any], digest: str | None, evidence_in: str | None
) -> dict[str, Any]:
    """The evidence a run judged a model on: collected in it (``documents``, by digest), or reused from
    the earlier run that collected it (``evidence_in``); {} when neither holds it."""
    if not digest:
        return {}
    found = documents.get(digest)
    if found is None and evidence_in:
        earlier = log.get(evidence_in) or {}
        found = ((earlier.get("audit") or {}).get("documents") or {}).get(digest)
    return found if isinstance(found, dict) else {}


def owner_status(doc: dict[str, Any], owner: str | None) -> OwnerStatus:
    """The owner as the directory saw them in ``doc``; "not checked" when no directory was asked."""
    identities = doc.get("identities") or {}
    if not doc or not identities.get("directory"):
        return "not checked"
    found = identities.get("owner") or {}
    if not owner or not found.get("found"):
        return "unknown"
    if found.get("kind") == "service":
        return "service"
    if found.get("active"):
        return "active"
    return "left" if found.get("left") else "disabled"
