"""Parse the asset references Azure ML puts in job inputs and deployments; never raises.

Forms seen on the wire and after azure-ai-ml's own normalisation:

    name:1                                     (the SDK turns an ARM data id into this)
    azureml:name:1    azureml:name@latest    azureml:name
    azureml:/subscriptions/S/resourceGroups/G/providers/Microsoft.MachineLearningServices/workspaces/W/data/N/versions/V
    /subscriptions/S/resourceGroups/G/providers/Microsoft.MachineLearningServices/workspaces/W/data/N/versions/V
    azureml://subscriptions/S/resourcegroups/G/workspaces/W/data/N/versions/V
    azureml://registries/R/data/N/versions/V   azureml://registries/R/data/N/labels/L
    azureml://datastores/D/paths/P             azureml://subscriptions/S/resourcegroups/G/workspaces/W/datastores/D/paths/P
    https://..., abfss://..., wasbs://..., ... (storage URLs)

The same grammar holds for models (``.../models/N/versions/V``), used to match a
deployment's model to the model version asked about. Anything else is kept as a
plain path: an input that cannot be pinned to a versioned asset is recorded
without a version, which the lineage rules treat as unpinned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

_SEG = r"[^/]+"
_ASSET = r"(?P<type>data|models)/(?P<name>[^/]+)/(?:versions/(?P<version>[^/]+)|labels/(?P<label>[^/]+))"
_ARM = re.compile(
    rf"(?:azureml:)?/subscriptions/(?P<sub>{_SEG})/resourcegroups/(?P<rg>{_SEG})"
    rf"/providers/microsoft\.machinelearningservices/workspaces/(?P<ws>{_SEG})/{_ASSET}/?",
    re.IGNORECASE,
)
_AZUREML_WORKSPACE = re.compile(
    rf"azureml://subscriptions/(?P<sub>{_SEG})/resourcegroups/(?P<rg>{_SEG})"
    rf"/(?:providers/microsoft\.machinelearningservices/)?workspaces/(?P<ws>{_SEG})/{_ASSET}/?",
    re.IGNORECASE,
)
_AZUREML_REGISTRY = re.compile(rf"azureml://registries/(?P<reg>{_SEG})/{_ASSET}/?", re.IGNORECASE)
_DATASTORE = re.compile(
    r"azureml://(?:subscriptions/[^/]+/resourcegroups/[^/]+/(?:providers/microsoft\.machinelearningservices/)?"
    r"workspaces/[^/]+/)?datastores/(?P<datastore>[^/]+)/paths/(?P<path>.*)",
    re.IGNORECASE,
)
_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.\-]*"
_PREFIXED = re.compile(rf"azureml:(?P<name>{_NAME})(?::(?P<version>[^:@/]+)|@(?P<label>[^:@/]+))?")
_BARE = re.compile(rf"(?P<name>{_NAME})(?::(?P<version>[^:@/]+)|@(?P<label>[^:@/]+))")


@dataclass(frozen=True)
class AssetRef:
    """A parsed reference: a versioned (or labelled) asset, or a plain storage path."""

    uri: str
    kind: Literal["asset", "path"]
    name: str | None = None
    version: str | None = None
    label: str | None = None
    subscription: str | None = None
    resource_group: str | None = None
    workspace: str | None = None
    registry: str | None = None
    datastore: str | None = None

    def in_workspace(self, subscription: str, resource_group: str, workspace: str) -> bool:
        """True for an asset of that workspace (a short form means the workspace asked)."""
        if self.kind != "asset" or self.registry:
            return False
        if self.workspace is None:
            return True
        return (
            (self.subscription or "").casefold() == subscription.casefold()
            and (self.resource_group or "").casefold() == resource_group.casefold()
            and self.workspace.casefold() == workspace.casefold()
        )

    def in_registry(self, registry: str) -> bool:
        return self.kind == "asset" and (self.registry or "").casefold() == registry.casefold()


def parse_asset_uri(uri: str, asset_type: Literal["data", "models"] = "data") -> AssetRef:
    """Parse one reference; a form that names another asset type or nothing known is a path."""
    text = (uri or "").strip()
    for pattern in (_ARM, _AZUREML_WORKSPACE):
        if m := pattern.fullmatch(text):
            if m["type"].lower() != asset_type:
                return AssetRef(text, "path")
            return AssetRef(
                text,
                "asset",
                name=m["name"],
                version=m["version"],
                label=m["label"],
                subscription=m["sub"],
                resource_group=m["rg"],
                workspace=m["ws"],
            )
    if m := _AZUREML_REGISTRY.fullmatch(text):
        if m["type"].lower() != asset_type:
            return AssetRef(text, "path")
        return AssetRef(
            text, "asset", name=m["name"], version=m["version"], label=m["label"], registry=m["reg"]
        )
    if m := _DATASTORE.fullmatch(text):
        return AssetRef(text, "path", datastore=m["datastore"])
    if m := _PREFIXED.fullmatch(text):
        return AssetRef(text, "asset", name=m["name"], version=m["version"], label=m["label"])
    if "://" not in text and (m := _BARE.fullmatch(text)):
        return AssetRef(text, "asset", name=m["name"], version=m["version"], label=m["label"])
    return AssetRef(text, "path")
