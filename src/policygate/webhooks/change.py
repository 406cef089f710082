"""The change on record for a webhook-triggered decision: no caller names a ticket or CI run there, so
they are read from the model version's own MLflow tags (``POLICYGATE_WEBHOOK_TICKET_TAG``, default
``ticket``; ``POLICYGATE_WEBHOOK_RUN_URL_TAG``, default ``run_url``; empty: not read).

A tag value that is no valid ticket or run URL (too long, not one http(s) line) is left out and logged,
never recorded: the decision itself does not depend on it. A version whose tags cannot be read is
decided without: the collection that follows reads it again and records why it could not."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from policygate.evidence import Change
from policygate.refs import ModelRef

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChangeTags:
    ticket: str | None = "ticket"
    run_url: str | None = "run_url"


def change_of(client: Any, ref: ModelRef, tags: ChangeTags) -> Change | None:
    """The ticket and run URL the version's tags name (None: none named, or unreadable)."""
    wanted = {field: tag for field, tag in (("ticket", tags.ticket), ("run_url", tags.run_url)) if tag}
    if not wanted:
        return None
    try:
        if ref.alias:
            mv = client.get_model_version_by_alias(ref.name, ref.alias)
        else:
            mv = client.get_model_version(ref.name, str(ref.version))
    except Exception as exc:  # noqa: BLE001 - the collection reads it again and records why it failed
        log.warning("webhook: tags of %s unreadable (%s): no change recorded", ref, type(exc).__name__)
        return None
    found = dict(mv.tags or {})
    fields: dict[str, str] = {}
    for field, tag in wanted.items():
        value = found.get(tag)
        if not isinstance(value, str) or not value.strip():
            continue
        try:
            Change.model_validate({field: value.strip()})
        except ValidationError:
            log.warning("webhook: tag %r of %s is no valid %s: left out", tag, ref, field)
            continue
        fields[field] = value.strip()
    return Change.model_validate(fields) if fields else None
