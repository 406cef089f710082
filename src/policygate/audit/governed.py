"""The governed content of an evidence document: what a release decision approved and an audit
compares (docs/audit.md).

Left out, because they change without the model changing: the request (who asks, when, for which
target), the collection (timestamps, calls), the subject's aliases (set *after* a decision, by
design), the tags policygate itself writes back (``policygate.*``) and the deployment (judged by the
re-evaluation: a broadened role is drift, not bypass).
"""

from __future__ import annotations

from typing import Any

from policygate.evidence import digest

OWN_TAGS = "policygate."
SECTIONS = ("subject", "ownership", "lineage", "approvals")


def governed(doc: dict[str, Any]) -> dict[str, Any]:
    subject = dict(doc.get("subject") or {})
    subject.pop("aliases", None)
    subject["tags"] = {k: v for k, v in (subject.get("tags") or {}).items() if not k.startswith(OWN_TAGS)}
    return {"subject": subject, **{k: doc.get(k) for k in SECTIONS[1:]}}


def governed_digest(doc: dict[str, Any]) -> str:
    return digest(governed(doc))


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The governed fields that differ (the subject's one level down: subject.tags, ...)."""
    a, b = governed(before), governed(after)
    changed: list[str] = []
    for section in SECTIONS:
        left, right = a.get(section), b.get(section)
        if section == "subject" and isinstance(left, dict) and isinstance(right, dict):
            changed += [f"subject.{k}" for k in sorted(set(left) | set(right)) if left.get(k) != right.get(k)]
        elif left != right:
            changed.append(section)
    return changed
