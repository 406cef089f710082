"""How ``log show`` and ``log export`` read a model reference that is an alias."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from policygate.cli.common import fail

if TYPE_CHECKING:
    from policygate.decisions.log import DecisionLog


def resolved_ref(log: DecisionLog, ref: str) -> tuple[str, Any]:
    """``ref`` to read the log under: an alias resolved through MLflow, else from recorded evidence."""
    from pydantic import ValidationError

    from policygate.config import Settings
    from policygate.decisions.aliases import alias_of, for_reading, uri_lookup

    if alias_of(ref) is None:
        return ref, None
    try:
        uri = Settings().mlflow_uri
    except ValidationError as exc:
        fail(f"cannot read the settings that name MLflow (to resolve {ref!r}): {exc.errors()[0]['msg']}")
    return for_reading(log, ref, uri_lookup(uri))
