"""Azure Machine Learning / hub-based Azure AI Foundry projects -> evidence parts, with the real SDKs.

azure-ai-ml ``MLClient`` reads the model version, its training job, the job's
data assets and the online endpoints/deployments serving the version;
azure-mgmt-authorization reads the role assignments of the endpoints' managed
identities. ``DefaultAzureCredential`` is used unless a credential is passed.
When a Foundry-resource project is configured (``foundry_project_endpoint``),
azure-ai-projects ``AIProjectClient.deployments.list()`` reads its model
deployments, and those whose model name and version are the subject's are
recorded as ``deployment.model_deployments``.

One collection is: the model version (and, alongside it, the Foundry project's
deployments); then the training job and the online endpoints in parallel; then
the job's data assets and each endpoint's deployments in parallel; then, for the
endpoints that serve this version, the role assignments of each identity and the
role definitions they name. The whole collection is bounded by a total timeout
and every client by small bounded retries, so a dead or throttling service costs
seconds, not minutes.

The constructor's ``credential``, ``transport`` and other keyword arguments
(``retry_total``, ``connection_timeout``, ``read_timeout``, ``proxies``, ...)
go to every Azure client: the seam for proxies, sovereign clouds and tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from policygate.config.azure import AzureSettings
from policygate.config.integrity import ArtifactSettings
from policygate.config.tags import TagMapping
from policygate.evidence import (
    Artifacts,
    ArtifactsUnverified,
    Code,
    Dataset,
    Deployment,
    Endpoint,
    Experiment,
    Identity,
    Lineage,
    ModelDeployment,
    RoleAssignment,
    Run,
    Subject,
)
from policygate.integrity.files import GAP as ARTIFACTS_GAP
from policygate.integrity.files import ArtifactsUnavailable, unverified
from policygate.refs import ModelRef
from policygate.sources.azureml_artifacts import AzureArtifactReader
from policygate.sources.azureml_uris import AssetRef, parse_asset_uri
from policygate.sources.base import Parts, SourceError, gaps_of
from policygate.sources.tags import approvals_from, ownership_from

PLATFORM: Literal["azureml"] = "azureml"
APPROVALS_FROM_TAG = "azureml:model-version-tag"
APPROVALS_FROM_PROPERTY = "azureml:model-version-property"
T = TypeVar("T")

# ARM endpoint per Azure cloud (MLClient knows its own; the authorization client needs it spelt out).
ARM_ENDPOINTS = {
    "AzureCloud": "https://management.azure.com",
    "AzureChinaCloud": "https://management.chinacloudapi.cn",
    "AzureUSGovernment": "https://management.usgovcloudapi.net",
}
_AUTH_MODES = {"key": "key", "amltoken": "aml_token", "aadtoken": "aad_token"}
_DATA_INPUT_TYPES = {"uri_file", "uri_folder", "mltable"}
# Where jobs record the source commit: Azure ML's own git properties, then MLflow's tags.
_COMMIT_KEYS = ("azureml.git.commit", "mlflow.source.git.commit")
_REPOSITORY_KEYS = ("azureml.git.repository_uri", "mlflow.source.git.repoURL")


@dataclass(frozen=True)
class _Workspace:
    subscription: str
    resource_group: str
    name: str

    @property
    def arm_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{self.name}"
        )


class AzureMLSource:
    platform: str = PLATFORM

    def __init__(
        self,
        settings: AzureSettings | None = None,
        tags: TagMapping | None = None,
        timeout_s: float = 10.0,
        *,
        credential: Any = None,
        transport: Any = None,
        artifacts: ArtifactSettings | None = None,
        **client_options: Any,
    ) -> None:
        self.settings = settings or AzureSettings()
        self.artifacts = artifacts or ArtifactSettings(enabled=False)
        self._files: AzureArtifactReader | None = None
        self.tags = tags or TagMapping()
        self.timeout_s = timeout_s
        self.arm_endpoint = ARM_ENDPOINTS.get(self.settings.cloud, ARM_ENDPOINTS["AzureCloud"])
        self._credential = credential
        self._owns_credential = credential is None
        self._client_options = {
            "retry_total": self.settings.retry_total,
            "retry_backoff_factor": 0.5,
            "retry_backoff_max": 2,
            "connection_timeout": min(timeout_s, 10.0),
            "read_timeout": timeout_s,
            **client_options,
        }
        self._transport = transport  # the caller's, or azure-core's default; bounded either way
        self._bounded: dict[str, Any] | None = None
        ws = self._configured_workspace()
        self.endpoint = f"{self.arm_endpoint}{ws.arm_id}" if ws else self.arm_endpoint
        self._ml_clients: dict[Any, Any] = {}
        self._auth_clients: dict[str, Any] = {}
        self._project_client: Any = None
        self._project_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="azureml-source")

    # -- clients (built lazily: the SDK import is slow and construction needs no network) --

    @property
    def _options(self) -> dict[str, Any]:
        """The clients' options, with one transport that keeps every request within the budget
        (policygate.sources.azure_transport), the caller's own transport included."""
        if self._bounded is None:
            from azure.core.pipeline.transport import RequestsTransport

            from policygate.sources.azure_transport import BoundedTransport

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

    def _workspace_client(self, ws: _Workspace) -> Any:
        if ws not in self._ml_clients:
            from azure.ai.ml import MLClient

            self._ml_clients[ws] = MLClient(
                self.credential,
                ws.subscription,
                ws.resource_group,
                ws.name,
                cloud=self.settings.cloud,
                enable_telemetry=False,
                show_progress=False,
                **self._options,
            )
        return self._ml_clients[ws]

    def _registry_client(self, registry: str) -> Any:
        """Builds the registry client; the SDK asks the registry discovery service here (one call)."""
        key = ("registry", registry.casefold())
        if key not in self._ml_clients:
            from azure.ai.ml import MLClient

            self._ml_clients[key] = MLClient(
                self.credential,
                registry_name=registry,
                cloud=self.settings.cloud,
                enable_telemetry=False,
                show_progress=False,
                **self._options,
            )
        return self._ml_clients[key]

    def _auth_client(self, subscription: str) -> Any:
        if subscription not in self._auth_clients:
            from azure.mgmt.authorization import AuthorizationManagementClient

            self._auth_clients[subscription] = AuthorizationManagementClient(
                self.credential,
                subscription,
                base_url=self.arm_endpoint,
                credential_scopes=[f"{self.arm_endpoint}/.default"],
                **self._options,
            )
        return self._auth_clients[subscription]

    def _foundry_deployments(self, endpoint: str, name: str, version: str) -> list[ModelDeployment]:
        """The Foundry project's deployments of this model version (every page of the project's list)."""
        return _model_deployments(self._foundry_listed(endpoint), name, version, endpoint)

    def _foundry_listed(self, endpoint: str) -> list[Any]:
        """Every deployment of the Foundry project (every page)."""
        from azure.ai.projects.models import Deployment as FoundryDeployment

        with self._project_lock:
            if self._project_client is None:
                from azure.ai.projects import AIProjectClient

                self._project_client = AIProjectClient(endpoint, self.credential, **self._options)
        listed = list(self._project_client.deployments.list())
        # the SDK deserialises leniently (a string "value" becomes a list of characters): fail closed
        unreadable = [d for d in listed if not isinstance(d, FoundryDeployment) or not _text(d.name)]
        if unreadable:
            raise ValueError(f"{len(unreadable)} of {len(listed)} listed items are not named deployments")
        return listed

    probed = False  # no cheap unauthenticated call to make; every call is bounded anyway

    def probe(self) -> str | None:
        return None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        for client in self._auth_clients.values():
            client.close()
        if self._project_client is not None:
            self._project_client.close()
        if self._owns_credential and self._credential is not None:
            self._credential.close()

    # -- collection --

    def _configured_workspace(self) -> _Workspace | None:
        s = self.settings
        if s.subscription_id and s.resource_group and s.workspace:
            return _Workspace(s.subscription_id, s.resource_group, s.workspace)
        return None

    def _scope(self, ref: ModelRef) -> tuple[_Workspace | None, str | None]:
        """(workspace, registry) of the model version; the workspace also holds jobs and endpoints."""
        if ref.registry:
            return self._configured_workspace(), ref.registry
        if ref.subscription and ref.resource_group and ref.workspace:
            return _Workspace(ref.subscription, ref.resource_group, ref.workspace), None
        ws = self._configured_workspace()
        if ws is not None:
            return ws, None
        if self.settings.registry:
            return None, self.settings.registry
        raise SourceError(
            PLATFORM,
            "configure",
            f"{ref} names no workspace: set POLICYGATE_AZURE__SUBSCRIPTION_ID, "
            "POLICYGATE_AZURE__RESOURCE_GROUP and POLICYGATE_AZURE__WORKSPACE "
            "(or POLICYGATE_AZURE__REGISTRY), or use the full azureml://subscriptions/... form",
        )

    def collect(self, ref: ModelRef) -> Parts:
        deadline = time.monotonic() + self.timeout_s
        calls = 0
        workspace, registry = self._scope(ref)
        name, version = ref.name, str(ref.version)
        project = self.settings.foundry_project_endpoint

        def call(what: str, fn: Callable[..., T], *args: Any) -> Future[T]:
            nonlocal calls
            calls += 1
            return self._pool.submit(self._within, deadline, what, fn, *args)

        def wait(what: str, future: Future[T]) -> T:
            try:
                return future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                future.cancel()
                raise SourceError(
                    PLATFORM, what, f"no answer from Azure within {self.timeout_s:g} s (timeout)"
                ) from None

        # the Foundry project's deployments do not depend on the model: asked for alongside it
        foundry_what = f"list model deployments of Foundry project {(project or '').rsplit('/', 1)[-1]}"
        foundry_future = (
            call(foundry_what, self._foundry_deployments, project, name, version) if project else None
        )

        if registry:
            what = f"connect to registry {registry}"
            registry_client = wait(what, call(what, self._registry_client, registry))
            what = f"get model {name}:{version} in registry {registry}"
            model = wait(what, call(what, registry_client.models.get, name, version))
            where = f"azureml://registries/{registry}"
        else:
            assert workspace is not None
            what = f"get model {name}:{version} in workspace {workspace.name}"
            model = wait(what, call(what, self._workspace_client(workspace).models.get, name, version))
            where = f"{self.arm_endpoint}{workspace.arm_id}"

        ml: Any = self._workspace_client(workspace) if workspace else None
        files = (
            self._pool.submit(self._read_files, ml, getattr(model, "path", None))
            if self.artifacts.enabled and ml is not None and not registry
            else None
        )
        job_name = getattr(model, "job_name", None) or None
        job_future = call(f"get job {job_name}", ml.jobs.get, job_name) if (ml and job_name) else None
        configured = self.settings.endpoints
        endpoints_what = (
            f"get online endpoints {', '.join(configured)}" if configured else "list online endpoints"
        )
        endpoints_future = call(endpoints_what, self._endpoints, ml) if ml else None

        job = wait(f"get job {job_name}", job_future) if job_future else None
        inputs = _job_inputs(job) if job is not None else []
        data_futures: list[tuple[str, str | None, AssetRef, Future[Any] | None]] = []
        for key, context, asset in inputs:
            future = None
            if ml is not None and workspace and asset.version and asset.in_workspace(*_ws_tuple(workspace)):
                future = call(
                    f"get data {asset.name}:{asset.version}", ml.data.get, asset.name, asset.version
                )
            data_futures.append((key, context, asset, future))

        endpoints = wait(endpoints_what, endpoints_future) if endpoints_future else []
        deployment_futures = [
            (
                ep,
                call(f"list deployments of endpoint {ep.name}", _listed, ml.online_deployments.list, ep.name),
            )
            for ep in endpoints
        ]
        datasets = [
            _dataset(key, context, asset, wait(f"get data {asset.name}:{asset.version}", f) if f else None)
            for key, context, asset, f in data_futures
        ]
        serving: list[tuple[Any, list[Any]]] = []
        for ep, future in deployment_futures:
            deployments = wait(f"list deployments of endpoint {ep.name}", future)
            matched = [d for d in deployments if _serves(d, name, version, workspace, registry)]
            if matched:
                serving.append((ep, matched))

        deployment: Deployment | None = None
        deployment_gaps: list[str] = []
        if serving and workspace is not None:
            assignments, deployment_gaps = self._role_assignments(serving, workspace.subscription, call, wait)
            deployment, more_gaps = _deployment(serving, assignments)
            deployment_gaps += more_gaps
        if foundry_future is not None:
            model_deployments = wait(foundry_what, foundry_future)
            if model_deployments:
                deployment = deployment or Deployment()
                deployment.model_deployments = model_deployments

        parts = self._parts(ref, workspace, registry, where, model, job, datasets)
        parts.deployment = deployment
        parts.gaps += deployment_gaps
        parts.calls = calls
        if self.artifacts.enabled:
            got = self._files_of(files, registry, getattr(model, "path", None))
            if isinstance(got, Artifacts):
                parts.artifacts = got
            else:
                parts.artifacts_unverified = got
                parts.gaps.append(ARTIFACTS_GAP)
        return parts

    def _files_of(
        self,
        files: Future[Artifacts | ArtifactsUnverified] | None,
        registry: str | None,
        model_uri: str | None,
    ) -> Artifacts | ArtifactsUnverified:
        """The files' evidence: hashed, or why not (the reading keeps its own budget,
        POLICYGATE_ARTIFACTS__TIMEOUT_S, and its transport's deadline stops a download past it)."""
        where = model_uri or "?"
        if files is None:
            why = "a registry model's files are not read yet" if registry else "no workspace to read from"
            return unverified(where, ArtifactsUnavailable(why), self.artifacts)
        try:
            return files.result(timeout=self.artifacts.timeout_s + 2)
        except FutureTimeout:
            files.cancel()
            detail = f"reading and hashing the model's files took longer than {self.artifacts.timeout_s:g} s"
            return unverified(where, ArtifactsUnavailable(detail, "time_budget"), self.artifacts)

    def _read_files(self, ml: Any, model_uri: str | None) -> Artifacts | ArtifactsUnverified:
        """The model's files as evidence, or why they could not be hashed (logged too)."""
        from policygate.sources.azure_transport import deadline

        if self._files is None:
            self._files = AzureArtifactReader(self.artifacts, self.credential, self._options)
        try:
            with deadline(time.monotonic() + self.artifacts.timeout_s):
                return self._files.read(ml, model_uri)
        except ArtifactsUnavailable as exc:
            return unverified(model_uri or "?", exc, self.artifacts)
        except Exception as exc:  # noqa: BLE001 - storage refused, ETag moved, ...: named
            why = ArtifactsUnavailable(f"{type(exc).__name__}: {_describe(exc)}")
            return unverified(model_uri or "?", why, self.artifacts)

    def _endpoints(self, ml: Any) -> list[Any]:
        if self.settings.endpoints:
            return [ml.online_endpoints.get(name) for name in self.settings.endpoints]
        return list(ml.online_endpoints.list())

    def _role_assignments(
        self,
        serving: list[tuple[Any, list[Any]]],
        subscription: str,
        call: Callable[..., Future[Any]],
        wait: Callable[[str, Future[Any]], Any],
    ) -> tuple[list[RoleAssignment], list[str]]:
        """Role assignments of the serving endpoints' identities, at, above or below the subscription."""
        principals: list[str] = []
        gaps: list[str] = []
        for ep, _ in serving:
            ids, complete = _principal_ids(ep.identity)
            principals += [p for p in ids if p not in principals]
            if not complete:
                gaps.append("deployment.identity.role_assignments")
        if not principals:
            return [], sorted(set(gaps))
        auth = self._auth_client(subscription)
        scope = f"/subscriptions/{subscription}"

        def list_for(principal: str) -> list[Any]:
            return list(auth.role_assignments.list_for_scope(scope, filter=f"principalId eq '{principal}'"))

        futures = [(p, call(f"list role assignments of principal {p}", list_for, p)) for p in principals]
        raw: list[Any] = []
        seen: set[str] = set()
        for p, future in futures:
            for ra in wait(f"list role assignments of principal {p}", future):
                if ra.id not in seen:
                    seen.add(ra.id)
                    raw.append(ra)
        definition_ids = sorted({ra.role_definition_id for ra in raw})
        definition_futures = {
            d: call(f"get role definition {d}", auth.role_definitions.get_by_id, d) for d in definition_ids
        }
        names = {d: wait(f"get role definition {d}", f).role_name for d, f in definition_futures.items()}
        assignments = [
            RoleAssignment(
                role=names[ra.role_definition_id] or ra.role_definition_id,
                scope=ra.scope,
                principal_id=ra.principal_id,
            )
            for ra in raw
        ]
        return assignments, sorted(set(gaps))

    def _within(self, at: float, what: str, fn: Callable[..., T], *args: Any) -> T:
        """:meth:`_guard`, every request it sends ending by ``at`` (the collection's deadline)."""
        from policygate.sources.azure_transport import deadline

        with deadline(at):
            return self._guard(what, fn, *args)

    def _guard(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        """Run one SDK call; every failure becomes a SourceError naming the call (never a token)."""
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ResourceNotFoundError,
            ServiceRequestError,
            ServiceResponseError,
        )

        try:
            return fn(*args)
        except ResourceNotFoundError as exc:
            raise SourceError(PLATFORM, what, f"not found ({_describe(exc)})", not_found=True) from None
        except ClientAuthenticationError as exc:
            # Foundry projects answer a missing data action with 401 PermissionDenied
            code = getattr(getattr(exc, "error", None), "code", None)
            problem = "not authorised" if code == "PermissionDenied" else "not authenticated"
            raise SourceError(PLATFORM, what, f"{problem} ({_describe(exc)})") from None
        except HttpResponseError as exc:
            status = exc.status_code or 0
            if status in (401, 403):
                raise SourceError(PLATFORM, what, f"not authorised ({_describe(exc)})") from None
            if status == 429 or status >= 500:
                raise SourceError(PLATFORM, what, f"Azure answered an error ({_describe(exc)})") from None
            raise SourceError(PLATFORM, what, f"request refused ({_describe(exc)})") from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise SourceError(
                PLATFORM, what, f"Azure unreachable or timed out ({type(exc).__name__}: {_first_line(exc)})"
            ) from None
        except SourceError:
            raise
        except Exception as exc:  # the SDK could not make sense of an answer: fail closed, name it
            raise SourceError(
                PLATFORM, what, f"unexpected answer ({type(exc).__name__}: {_first_line(exc)})"
            ) from None

    def _parts(
        self,
        ref: ModelRef,
        workspace: _Workspace | None,
        registry: str | None,
        where: str,
        model: Any,
        job: Any,
        datasets: list[Dataset],
    ) -> Parts:
        tags = _str_dict(getattr(model, "tags", None))
        properties = _str_dict(getattr(model, "properties", None))
        created = getattr(model, "creation_context", None)
        if registry:
            canonical = ModelRef(PLATFORM, ref.name, version=str(ref.version), registry=registry)
        else:
            assert workspace is not None
            canonical = ModelRef(
                PLATFORM,
                ref.name,
                version=str(ref.version),
                subscription=workspace.subscription.lower(),
                resource_group=workspace.resource_group,
                workspace=workspace.name,
            )
        subject = Subject(
            platform="azureml",
            name=ref.name,
            version=str(getattr(model, "version", None) or ref.version),
            ref=str(canonical),
            created_at=_iso(getattr(created, "created_at", None)),
            created_by=getattr(created, "created_by", None) or None,
            tags=tags,
            properties=properties,
            stage=getattr(model, "stage", None) or None,
        )
        ownership = ownership_from(self.tags, properties, tags)
        if tags.get(self.tags.approvals, "").strip():
            approvals, approvals_ok = approvals_from(tags[self.tags.approvals], APPROVALS_FROM_TAG)
        else:
            approvals, approvals_ok = approvals_from(
                properties.get(self.tags.approvals), APPROVALS_FROM_PROPERTY
            )
        lineage = _lineage(job, datasets)

        gaps = gaps_of(subject, ownership, approvals_ok, lineage)
        return Parts(PLATFORM, where, subject, ownership, lineage, approvals, None, gaps)


# -- mapping SDK objects to evidence --


def _lineage(job: Any, datasets: list[Dataset]) -> Lineage:
    if job is None:
        return Lineage()
    props = _str_dict(getattr(job, "properties", None))
    created = getattr(job, "creation_context", None)
    status = getattr(job, "status", None)
    return Lineage(
        run=Run(
            platform=PLATFORM,
            id=job.name,
            status=str(getattr(status, "value", status)) if status else None,
            experiment=Experiment(name=getattr(job, "experiment_name", None) or None),
            user=getattr(created, "created_by", None) or None,
            start=_iso(props.get("StartTimeUtc")) or _iso(getattr(created, "created_at", None)),
            end=_iso(props.get("EndTimeUtc")),
            environment=_text(getattr(job, "environment", None)),
            compute=_text(getattr(job, "compute", None)),
        ),
        code=Code(
            commit=next((props[k] for k in _COMMIT_KEYS if props.get(k)), None),
            repository=next((props[k] for k in _REPOSITORY_KEYS if props.get(k)), None),
            entry_point=_text(getattr(job, "command", None)) or props.get("mlflow.source.name") or None,
        ),
        datasets=datasets,
    )


def _job_inputs(job: Any) -> list[tuple[str, str | None, AssetRef]]:
    """Data inputs of the job: (input name, context, parsed reference); literals and models are skipped."""
    found: list[tuple[str, str | None, AssetRef]] = []
    for key, value in (getattr(job, "inputs", None) or {}).items():
        uri = _input_uri(value)
        kind = str(getattr(value, "type", "") or "").lower()
        if uri and (not kind or kind in _DATA_INPUT_TYPES):
            found.append((key, "training", parse_asset_uri(uri)))
    # AutoML jobs name their data by role instead of in ``inputs``
    for attr, context in (
        ("training_data", "training"),
        ("validation_data", "validation"),
        ("test_data", "test"),
    ):
        uri = _input_uri(getattr(job, attr, None))
        if uri:
            found.append((attr, context, parse_asset_uri(uri)))
    return found


def _input_uri(value: Any) -> str | None:
    if value is None or isinstance(value, (str, int, float, bool)):
        return None
    try:
        path = value.path  # NodeInput.path raises for a literal input
    except Exception:
        return None
    return path if isinstance(path, str) and path.strip() else None


def _dataset(key: str, context: str | None, asset: AssetRef, data: Any) -> Dataset:
    if asset.kind == "path" or not asset.name:
        return Dataset(name=key, source=asset.uri, context=context)
    return Dataset(
        name=asset.name,
        version=asset.version,
        source=(getattr(data, "path", None) or asset.uri) if data is not None else asset.uri,
        context=context,
    )


def _serves(
    deployment: Any, name: str, version: str, workspace: _Workspace | None, registry: str | None
) -> bool:
    model = getattr(deployment, "model", None)
    if not isinstance(model, str):  # an inline model object: not a registered version
        model = getattr(model, "id", None)
    if not isinstance(model, str) or not model:
        return False
    asset = parse_asset_uri(model, "models")
    if asset.kind != "asset" or (asset.name or "").casefold() != name.casefold() or asset.version != version:
        return False
    if registry:
        return asset.in_registry(registry)
    return workspace is not None and asset.in_workspace(*_ws_tuple(workspace))


def _principal_ids(identity: Any) -> tuple[list[str], bool]:
    """Principal ids of the system- and user-assigned identities; False when one could not be read."""
    if identity is None:
        return [], True
    ids: list[str] = []
    complete = True
    if "system" in str(getattr(identity, "type", "") or "").lower():
        if identity.principal_id:
            ids.append(str(identity.principal_id))
        else:
            complete = False
    for uai in getattr(identity, "user_assigned_identities", None) or []:
        # azure-ai-ml 1.35 copies the wire dict onto the object, so the id lands in ``principalId``
        pid = getattr(uai, "principal_id", None) or vars(uai).get("principalId")
        if pid:
            ids.append(str(pid))
        else:
            complete = False
    return ids, complete


def _normal(value: Any) -> str | None:
    """Enum or string to lower-case text ("Enabled" -> "enabled")."""
    value = getattr(value, "value", value)
    if value is None:
        return None
    return str(value).strip().lower() or None


def _auth_mode(value: Any) -> str | None:
    text = _normal(value)
    if text is None:
        return None
    return _AUTH_MODES.get(text.replace("_", ""), text)


def _exposure(ep: Any, deployments: list[Any]) -> tuple[bool, bool, bool, str]:
    """Sort key: the most exposed endpoint first (non-Entra auth, public network, public egress)."""
    egress = {_normal(getattr(d, "egress_public_network_access", None)) for d in deployments}
    return (
        _auth_mode(getattr(ep, "auth_mode", None)) == "aad_token",
        _normal(getattr(ep, "public_network_access", None)) == "disabled",
        egress == {"disabled"},
        str(ep.name),
    )


def _deployment(
    serving: list[tuple[Any, list[Any]]], assignments: list[RoleAssignment]
) -> tuple[Deployment, list[str]]:
    """The most exposed serving endpoint, with the role assignments of every serving endpoint's identity."""
    ep, deployments = sorted(serving, key=lambda s: _exposure(*s))[0]
    egress_values = {_normal(getattr(d, "egress_public_network_access", None)) for d in deployments}
    egress = (
        "enabled"
        if "enabled" in egress_values
        else (egress_values.pop() if len(egress_values) == 1 else None)
    )
    endpoint = Endpoint(
        name=str(ep.name),
        auth_mode=_auth_mode(getattr(ep, "auth_mode", None)),
        public_network_access=_normal(getattr(ep, "public_network_access", None)),
        egress_public_network_access=egress,
    )
    gaps = []
    if endpoint.auth_mode is None:
        gaps.append("deployment.endpoint.auth_mode")
    if endpoint.public_network_access is None:
        gaps.append("deployment.endpoint.public_network_access")
    identity = None
    raw = getattr(ep, "identity", None)
    if raw is None or _normal(getattr(raw, "type", None)) in (None, "none"):
        gaps.append("deployment.identity")
    else:
        ids, _ = _principal_ids(raw)
        identity = Identity(
            type=_normal(raw.type),
            principal_id=(raw.principal_id or (ids[0] if ids else None)),
            role_assignments=assignments,
        )
    return Deployment(endpoint=endpoint, identity=identity), gaps


def _model_deployments(listed: list[Any], name: str, version: str, project: str) -> list[ModelDeployment]:
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
                publisher=_text(getattr(d, "model_publisher", None)),
                model=model,
                version=version,
                sku=_text(getattr(sku, "name", None)),
                capacity=capacity if isinstance(capacity, int) and not isinstance(capacity, bool) else None,
                source=project,
            )
        )
    return sorted(found, key=lambda m: m.name)


# -- small helpers --


def _listed(fn: Callable[..., Iterable[T]], *args: Any) -> list[T]:
    """Call a paged list operation and read every page (the HTTP calls happen while iterating)."""
    return list(fn(*args))


def _ws_tuple(ws: _Workspace) -> tuple[str, str, str]:
    return ws.subscription, ws.resource_group, ws.name


def _str_dict(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if v is not None}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(getattr(value, "id", None) or value) if not isinstance(value, str) else value
    return text.strip() or None


def _iso(value: Any) -> str | None:
    if not value:
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _describe(exc: Any) -> str:
    status = getattr(exc, "status_code", None)
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    message = getattr(error, "message", None) or getattr(exc, "reason", None) or _first_line(exc)
    head = " ".join(str(x) for x in (status, code) if x)
    return f"{head}: {_first_line(message)}" if head else _first_line(message)


def _first_line(value: Any) -> str:
    text = str(value or "").strip()
    return text.splitlines()[0][:300] if text else ""
