"""Azure ML and Foundry models in use: the model versions the configured workspace's online
deployments serve, and the configured Foundry project's model deployments.

Listed with the same bounded clients as the evidence (one call for the endpoints, one per endpoint
for its deployments, one paged list of the Foundry project's deployments). Nothing here knows a
model's tags, so every entry is collected (no fingerprint).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from policygate.audit.inventory import InUse, Listing
from policygate.sources.azureml.guard import PLATFORM
from policygate.sources.azureml.mapping import listed as _listed
from policygate.sources.azureml.mapping import text as _text
from policygate.sources.azureml.source import AzureMLSource
from policygate.sources.azureml.uris import parse_asset_uri
from policygate.sources.base import SourceError


def list_in_use(source: AzureMLSource, target: str, publishers: Sequence[str] = ()) -> Listing:
    listing = Listing(PLATFORM)
    deadline = time.monotonic() + source.timeout_s * 3  # a listing is a few collections' worth of calls
    ws = source._configured_workspace()
    project = source.settings.foundry_project_endpoint
    try:
        if ws is not None:
            ml = source._workspace_client(ws)
            listing.calls += 1
            endpoints = source._within(deadline, "list online endpoints", source._endpoints, ml)
            for ep in endpoints:
                listing.calls += 1
                what = f"list deployments of endpoint {ep.name}"
                for d in source._within(deadline, what, _listed, ml.online_deployments.list, ep.name):
                    item = _served(ws, source.settings.registry, ep, d, target)
                    if item is not None:
                        listing.items.append(item)
        if project:
            listing.calls += 1
            what = f"list model deployments of Foundry project {project.rsplit('/', 1)[-1]}"
            wanted = {p.casefold() for p in publishers}
            for d in source._within(deadline, what, source._foundry_listed, project):
                publisher = _text(getattr(d, "model_publisher", None)) or ""
                if wanted and publisher.casefold() not in wanted:
                    continue
                name, version = (
                    _text(getattr(d, "model_name", None)),
                    _text(getattr(d, "model_version", None)),
                )
                if name and version:
                    ref = f"azureml:{name}:{version}"
                    via = f"foundry deployment {d.name}" + (f" ({publisher})" if publisher else "")
                    # a decision on azureml:NAME:VERSION is recorded under the workspace's full reference
                    spellings = (ref,) + ((_workspace_ref(ws, name, version),) if ws is not None else ())
                    listing.items.append(
                        InUse(ref, PLATFORM, name, version, target, via, spellings=spellings)
                    )
    except SourceError as exc:
        listing.error = str(exc)
    return listing


def _served(ws: Any, registry: str | None, ep: Any, deployment: Any, target: str) -> InUse | None:
    """The registered model version a deployment serves; None for an inline (unregistered) model."""
    model = getattr(deployment, "model", None)
    if not isinstance(model, str):
        model = getattr(model, "id", None)
    asset = parse_asset_uri(model or "", "models")
    if asset.kind != "asset" or not asset.name or not asset.version:
        return None
    via = f"online deployment {ep.name}/{deployment.name}"
    if asset.registry:
        ref = f"azureml://registries/{asset.registry}/models/{asset.name}/versions/{asset.version}"
        spellings: tuple[str, ...] = (ref,)
        if registry and registry.casefold() == asset.registry.casefold():
            spellings += (f"azureml:{asset.name}:{asset.version}",)
    else:
        where = (
            _Where(asset.subscription, asset.resource_group, asset.workspace)
            if asset.subscription and asset.resource_group and asset.workspace
            else ws
        )
        ref = _workspace_ref(where, asset.name, asset.version)
        spellings = (ref,)
        if asset.in_workspace(ws.subscription, ws.resource_group, ws.name) or not asset.subscription:
            spellings += (f"azureml:{asset.name}:{asset.version}",)
    return InUse(ref, PLATFORM, asset.name, asset.version, target, via, spellings=spellings)


@dataclass(frozen=True)
class _Where:
    subscription: str
    resource_group: str
    name: str


def _workspace_ref(ws: Any, name: str, version: str) -> str:
    """The full reference of a workspace's model version (as the Azure ML source records its subject)."""
    return (
        f"azureml://subscriptions/{ws.subscription}/resourceGroups/{ws.resource_group}/workspaces/{ws.name}"
        f"/models/{name}/versions/{version}"
    )
