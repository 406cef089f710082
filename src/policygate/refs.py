"""Model references: parse the forms callers type, format the one canonical form we record.

mlflow:models:/NAME/VERSION         mlflow:models:/NAME@ALIAS
azureml:NAME:VERSION                (workspace from configuration)
azureml://subscriptions/S/resourceGroups/G/workspaces/W/models/NAME/versions/V
azureml://registries/R/models/NAME/versions/V
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal

from policygate.errors import InputError

_NAME = r"[A-Za-z0-9][A-Za-z0-9._\-]{0,254}"
_VERSION = r"[0-9]{1,18}"
_ALIAS = r"[A-Za-z_][A-Za-z0-9_\-]{0,254}"
_SEG = r"[A-Za-z0-9][A-Za-z0-9._()\-]{0,89}"

_MLFLOW_VERSION = re.compile(rf"mlflow:models:/(?P<name>{_NAME})/(?P<version>{_VERSION})")
_MLFLOW_ALIAS = re.compile(rf"mlflow:models:/(?P<name>{_NAME})@(?P<alias>{_ALIAS})")
_AZ_SHORT = re.compile(rf"azureml:(?P<name>{_NAME}):(?P<version>{_VERSION})")
_AZ_WORKSPACE = re.compile(
    rf"azureml://subscriptions/(?P<subscription>[0-9A-Fa-f-]{{36}})/resourceGroups/(?P<resource_group>{_SEG})"
    rf"/workspaces/(?P<workspace>{_SEG})/models/(?P<name>{_NAME})/versions/(?P<version>{_VERSION})"
)
_AZ_REGISTRY = re.compile(
    rf"azureml://registries/(?P<registry>{_SEG})/models/(?P<name>{_NAME})/versions/(?P<version>{_VERSION})"
)

# Every form above as one pattern, for the OpenAPI document (JSON Schema's regex dialect reads it as
# Python does): what the API states it accepts is what :func:`parse` accepts, spaces around included.
# MODEL_VERSION_PATTERN: the forms that name a version.
_VERSIONED = [_MLFLOW_VERSION, _AZ_SHORT, _AZ_WORKSPACE, _AZ_REGISTRY]


def _one_pattern(forms: list[re.Pattern[str]]) -> str:
    return r"^\s*(?:" + "|".join(re.sub(r"\(\?P<\w+>", "(", f.pattern) for f in forms) + r")\s*$"


MODEL_REF_PATTERN = _one_pattern([*_VERSIONED, _MLFLOW_ALIAS])
MODEL_VERSION_PATTERN = _one_pattern(_VERSIONED)
MODEL_REF_MAX = 1024

FORMS = (
    "mlflow:models:/NAME/VERSION, mlflow:models:/NAME@ALIAS, azureml:NAME:VERSION, "
    "azureml://subscriptions/S/resourceGroups/G/workspaces/W/models/NAME/versions/V or "
    "azureml://registries/R/models/NAME/versions/V"
)


class RefError(InputError):
    """A model reference that does not parse; the message names the accepted forms."""


@dataclass(frozen=True)
class ModelRef:
    platform: Literal["mlflow", "azureml"]
    name: str
    version: str | None = None
    alias: str | None = None
    subscription: str | None = None
    resource_group: str | None = None
    workspace: str | None = None
    registry: str | None = None

    def __str__(self) -> str:
        if self.platform == "mlflow":
            tail = f"/{self.version}" if self.version else f"@{self.alias}"
            return f"mlflow:models:/{self.name}{tail}"
        if self.registry:
            return f"azureml://registries/{self.registry}/models/{self.name}/versions/{self.version}"
        if self.subscription and self.resource_group and self.workspace:
            return (
                f"azureml://subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
                f"/workspaces/{self.workspace}/models/{self.name}/versions/{self.version}"
            )
        return f"azureml:{self.name}:{self.version}"

    def with_version(self, version: str) -> ModelRef:
        """The same model pinned to a version (an alias resolved)."""
        return replace(self, version=version, alias=None)


def parse(text: str) -> ModelRef:
    ref = (text or "").strip()
    if len(ref) > MODEL_REF_MAX:
        raise RefError("model reference is longer than 1024 characters")
    if m := _MLFLOW_VERSION.fullmatch(ref):
        return ModelRef("mlflow", m["name"], version=str(int(m["version"])))
    if m := _MLFLOW_ALIAS.fullmatch(ref):
        return ModelRef("mlflow", m["name"], alias=m["alias"])
    if m := _AZ_SHORT.fullmatch(ref):
        return ModelRef("azureml", m["name"], version=str(int(m["version"])))
    if m := _AZ_WORKSPACE.fullmatch(ref):
        return ModelRef(
            "azureml",
            m["name"],
            version=str(int(m["version"])),
            subscription=m["subscription"].lower(),
            resource_group=m["resource_group"],
            workspace=m["workspace"],
        )
    if m := _AZ_REGISTRY.fullmatch(ref):
        return ModelRef("azureml", m["name"], version=str(int(m["version"])), registry=m["registry"])
    raise RefError(f"malformed model reference {text!r}: expected {FORMS}")
