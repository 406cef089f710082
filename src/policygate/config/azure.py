"""``POLICYGATE_AZURE__*``: where Azure ML references live and how to reach Azure (docs/azure.md)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator


class AzureSettings(BaseModel):
    """``POLICYGATE_AZURE__*``: where ``azureml:NAME:VERSION`` refs live and how to reach Azure."""

    subscription_id: str | None = Field(default=None, description="Subscription of the workspace.")
    resource_group: str | None = Field(default=None, description="Resource group of the workspace.")
    workspace: str | None = Field(
        default=None, description="Azure ML workspace (or hub-based Foundry project) name."
    )
    registry: str | None = Field(
        default=None, description="Registry for azureml:NAME:VERSION when no workspace is configured."
    )
    endpoints: list[str] = Field(
        default_factory=list,
        description="Online endpoints to inspect (JSON list); empty: every endpoint of the workspace.",
    )
    cloud: str = Field(default="AzureCloud", description="AzureCloud, AzureChinaCloud or AzureUSGovernment.")
    retry_total: int = Field(default=2, ge=0, le=5, description="Retries per Azure request (bounded).")
    foundry_project_endpoint: str | None = Field(
        default=None,
        description="Azure AI Foundry project endpoint, "
        "https://ACCOUNT.services.ai.azure.com/api/projects/PROJECT: its model deployments are read.",
    )

    @field_validator("foundry_project_endpoint")
    @classmethod
    def _project_endpoint(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        segments = parts.path.strip("/").split("/")
        if (
            parts.scheme != "https"
            or not parts.hostname
            or parts.query
            or len(segments) != 3
            or segments[:2] != ["api", "projects"]
        ):
            raise ValueError(
                "must be a Foundry project endpoint, https://ACCOUNT.services.ai.azure.com/api/projects/PROJECT"
            )
        return value
