"""Azure AI Foundry (Foundry-resource) projects: the project's model deployments, and those that
serve the subject's model version (``deployment.model_deployments``).

azure-ai-projects ``AIProjectClient.deployments.list()`` reads them; the listing is also what the
audit inventories (policygate.audit.azureml_inventory).
"""

from __future__ import annotations

from typing import Any

from policygate.evidence import ModelDeployment
from policygate.sources.azureml.mapping import text


def listed_deployments(client: Any) -> list[Any]:
    """Every deployment of the Foundry project (every page)."""
    from azure.ai.projects.models import Deployment as FoundryDeployment

    listed = list(client.deployments.list())
    # the SDK deserialises leniently (a string "value" becomes a list of characters): fail closed
    unreadable = [d for d in listed if not isinstance(d, FoundryDeployment) or not text(d.name)]
    if unreadable:
        raise ValueError(f"{len(unreadable)} of {len(listed)} listed items are not named deployments")
    return listed


def model_deployments(listed: list[Any], name: str, version: str, project: str) -> list[ModelDeployment]:
    """The Foundry deployments of this model version: model name (any case) and version are the subject's."""
    found: list[ModelDeployment] = []
    for d in listed:
        model = getattr(d, "model_name", None)
        if not isinstance(model, str) or model.casefold() != name.casefold():
            continue
        if str(getattr(d, "model_version", None) or "") != version:
            continue
        sku = getattr(d, "sku", None)
        capacity = getattr(sku, "capacity", None)
        found.append(
            ModelDeployment(
                name=str(d.name),
                publisher=text(getattr(d, "model_publisher", None)),
                model=model,
                version=version,
                sku=text(getattr(sku, "name", None)),
                capacity=capacity if isinstance(capacity, int) and not isinstance(capacity, bool) else None,
                source=project,
            )
        )
    return sorted(found, key=lambda m: m.name)
