"""The Azure SDK clients of one source, built lazily (the SDK import is slow and construction needs
no network) and kept for its lifetime: one MLClient per workspace or registry, one authorization
client per subscription, one Foundry project client.

Every client gets the same options: the caller's ``credential`` (else ``DefaultAzureCredential``),
small bounded retries and timeouts, and one transport that keeps every request within the
collection's budget (policygate.sources.azureml.transport), the caller's own transport included.
"""

from __future__ import annotations

import threading
from typing import Any

from policygate.sources.azureml.mapping import Workspace

# ARM endpoint per Azure cloud (MLClient knows its own; the authorization client needs it spelt out).
ARM_ENDPOINTS = {
    "AzureCloud": "https://management.azure.com",
    "AzureChinaCloud": "https://management.chinacloudapi.cn",
    "AzureUSGovernment": "https://management.usgovcloudapi.net",
}


class AzureClients:
    def __init__(self, cloud: str, credential: Any, transport: Any, options: dict[str, Any]) -> None:
        self.cloud = cloud
        self.arm_endpoint = ARM_ENDPOINTS.get(cloud, ARM_ENDPOINTS["AzureCloud"])
        self._credential = credential
        self._owns_credential = credential is None
        self._client_options = options
        self._transport = transport  # the caller's, or azure-core's default; bounded either way
        self._bounded: dict[str, Any] | None = None
        self._ml_clients: dict[Any, Any] = {}
        self._auth_clients: dict[str, Any] = {}
        self._project_client: Any = None
        self._project_lock = threading.Lock()

    @property
    def options(self) -> dict[str, Any]:
        """The clients' options, with one transport that keeps every request within the budget
        (policygate.sources.azureml.transport), the caller's own transport included."""
        if self._bounded is None:
            from azure.core.pipeline.transport import RequestsTransport

            from policygate.sources.azureml.transport import BoundedTransport

            options = dict(self._client_options)
            inner = self._transport if self._transport is not None else RequestsTransport()
            options["transport"] = BoundedTransport(
                inner, float(options["connection_timeout"]), float(options["read_timeout"])
            )
            self._bounded = options
        return self._bounded

    @property
    def credential(self) -> Any:
        if self._credential is None:
            from azure.identity import DefaultAzureCredential

            self._credential = DefaultAzureCredential()
        return self._credential

    def workspace(self, ws: Workspace) -> Any:
        if ws not in self._ml_clients:
            from azure.ai.ml import MLClient

            self._ml_clients[ws] = MLClient(
                self.credential,
                ws.subscription,
                ws.resource_group,
                ws.name,
                cloud=self.cloud,
                enable_telemetry=False,
                show_progress=False,
                **self.options,
            )
        return self._ml_clients[ws]

    def registry(self, registry: str) -> Any:
        """Builds the registry client; the SDK asks the registry discovery service here (one call)."""
        key = ("registry", registry.casefold())
        if key not in self._ml_clients:
            from azure.ai.ml import MLClient

            self._ml_clients[key] = MLClient(
                self.credential,
                registry_name=registry,
                cloud=self.cloud,
                enable_telemetry=False,
                show_progress=False,
                **self.options,
            )
        return self._ml_clients[key]

    def authorization(self, subscription: str) -> Any:
        if subscription not in self._auth_clients:
            from azure.mgmt.authorization import AuthorizationManagementClient

            self._auth_clients[subscription] = AuthorizationManagementClient(
                self.credential,
                subscription,
                base_url=self.arm_endpoint,
                credential_scopes=[f"{self.arm_endpoint}/.default"],
                **self.options,
            )
        return self._auth_clients[subscription]

    def project(self, endpoint: str) -> Any:
        """The Foundry project's client (one per source: one project is configured)."""
        with self._project_lock:
            if self._project_client is None:
                from azure.ai.projects import AIProjectClient

                self._project_client = AIProjectClient(endpoint, self.credential, **self.options)
            return self._project_client

    def close(self) -> None:
        for client in self._auth_clients.values():
            client.close()
        if self._project_client is not None:
            self._project_client.close()
        if self._owns_credential and self._credential is not None:
            self._credential.close()
