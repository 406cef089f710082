"""Where an MLflow alias points now: one registry call, bounded like every MLflow read here."""

from __future__ import annotations

from policygate.sources.base import SourceError
from policygate.sources.mlflow.mapping import PLATFORM
from policygate.sources.mlflow.source import MlflowSource


def version_of_alias(source: MlflowSource, name: str, alias: str) -> str | None:
    """The version ``name@alias`` points at; None when MLflow has no such alias or model (an unknown
    alias is a 400 INVALID_PARAMETER_VALUE there, an unknown model a 404). SourceError otherwise."""
    from mlflow.exceptions import MlflowException

    try:
        return str(source.client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        code = str(getattr(exc, "error_code", "") or "")
        if code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or (
            code == "INVALID_PARAMETER_VALUE" and "alias" in str(exc).lower()
        ):
            return None
        raise SourceError(PLATFORM, f"get {name}@{alias}", f"{source.endpoint}: {code or 'error'}") from None
    except Exception as exc:  # noqa: BLE001 - unreachable, refused, nonsense: it did not answer
        raise SourceError(
            PLATFORM, f"get {name}@{alias}", f"{source.endpoint} unreachable ({type(exc).__name__})"
        ) from None
