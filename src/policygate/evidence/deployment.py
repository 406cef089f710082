"""Where and how the model is served, and what its identity may access."""

from __future__ import annotations

from pydantic import Field

from policygate.evidence.fields import Part


class Endpoint(Part):
    """Serving endpoint of the model."""

    name: str = Field(description="Serving endpoint name.")
    auth_mode: str | None = Field(default=None, description="key, aml_token or aad_token.")
    public_network_access: str | None = Field(default=None, description="enabled or disabled.")
    egress_public_network_access: str | None = Field(
        default=None, description="Outbound public network access of the deployment: enabled or disabled."
    )


class RoleAssignment(Part):
    """An Azure RBAC role assignment held by the deployment identity."""

    role: str = Field(description="Role name, resolved from the role definition.")
    scope: str = Field(description="ARM scope the role is assigned at.")
    principal_id: str | None = Field(default=None, description="Principal holding the assignment.")


class Identity(Part):
    """Managed identity the deployment runs as, and what it may access."""

    type: str | None = Field(default=None, description="system_assigned, user_assigned, ...")
    principal_id: str | None = Field(default=None, description="Entra ID object id of the identity.")
    role_assignments: list[RoleAssignment] = Field(default_factory=list)


class ModelDeployment(Part):
    """A model deployment of an Azure AI Foundry project that deploys this model version."""

    name: str = Field(min_length=1, description="Deployment name in the Foundry project.")
    publisher: str | None = Field(default=None, description="Publisher of the deployed model, e.g. OpenAI.")
    model: str | None = Field(default=None, description="Publisher-specific name of the deployed model.")
    version: str | None = Field(default=None, description="Publisher-specific version of the deployed model.")
    sku: str | None = Field(
        default=None, description="SKU name of the deployment, e.g. GlobalStandard, ProvisionedManaged."
    )
    capacity: int | None = Field(default=None, description="SKU capacity of the deployment.")
    source: str | None = Field(
        default=None, description="Foundry project endpoint the deployment was listed from."
    )


class Deployment(Part):
    """Where and how the model is (to be) served; null when the platform has no deployment data."""

    endpoint: Endpoint | None = Field(default=None, description="Endpoint serving the model version.")
    identity: Identity | None = Field(default=None, description="Identity the deployment runs as.")
    model_deployments: list[ModelDeployment] = Field(
        default_factory=list,
        description="Model deployments of the configured Azure AI Foundry project whose model name and "
        "version are the subject's; empty when none is configured or none deploys this version.",
    )
