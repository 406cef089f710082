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

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from policygate.config.azure import AzureSettings
from policygate.config.integrity import ArtifactSettings
from policygate.config.tags import TagMapping
from policygate.evidence import Artifacts, ArtifactsUnverified, Deployment, ModelDeployment, RoleAssignment
from policygate.integrity.files import GAP as ARTIFACTS_GAP
from policygate.integrity.files import ArtifactsUnavailable, unverified
from policygate.refs import ModelRef
from policygate.sources.azureml.artifacts import AzureArtifactReader
from policygate.sources.azureml.clients import AzureClients
from policygate.sources.azureml.foundry import listed_deployments, model_deployments
from policygate.sources.azureml.guard import PLATFORM, describe, guard
from policygate.sources.azureml.mapping import (
    Workspace,
    dataset,
    deployment_of,
    job_inputs,
    listed,
    parts_of,
    principal_ids,
    serves,
)
from policygate.sources.azureml.uris import AssetRef
from policygate.sources.base import Parts, SourceError
from policygate.sources.deadline import Deadline

T = TypeVar("T")


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
        options = {
            "retry_total": self.settings.retry_total,
            "retry_backoff_factor": 0.5,
            "retry_backoff_max": 2,
            "connection_timeout": min(timeout_s, 10.0),
            "read_timeout": timeout_s,
            **client_options,
        }
        self.clients = AzureClients(self.settings.cloud, credential, transport, options)
        self.arm_endpoint = self.clients.arm_endpoint
        ws = self._configured_workspace()
        self.endpoint = f"{self.arm_endpoint}{ws.arm_id}" if ws else self.arm_endpoint
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="azureml-source")

    @property
    def credential(self) -> Any:
        return self.clients.credential

    def _workspace_client(self, ws: Workspace) -> Any:
        return self.clients.workspace(ws)

    def _foundry_deployments(self, endpoint: str, name: str, version: str) -> list[ModelDeployment]:
        """The Foundry project's deployments of this model version (every page of the project's list)."""
        return model_deployments(self._foundry_listed(endpoint), name, version, endpoint)

    def _foundry_listed(self, endpoint: str) -> list[Any]:
        """Every deployment of the Foundry project (every page)."""
        return listed_deployments(self.clients.project(endpoint))

    probed = False  # no cheap unauthenticated call to make; every call is bounded anyway

    def probe(self) -> str | None:
        return None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.clients.close()

    # -- write-back --

    def set_archived(self, ref: ModelRef, archived: bool) -> None:
        """Archive the version (a retirement) or restore it (its undoing) through azure-ai-ml: the SDK
        reads the version and writes it back with ``isArchived``. SourceError when Azure refuses."""
        workspace, registry = self._scope(ref)
        if registry:
            client = self.clients.registry(registry)
        elif workspace is not None:
            client = self.clients.workspace(workspace)
        else:  # _scope names one or the other, or raises
            raise SourceError(PLATFORM, "archive", f"{ref} names no workspace or registry")
        change = client.models.archive if archived else client.models.restore
        what = f"{'archive' if archived else 'restore'} model {ref.name}:{ref.version}"
        guard(what, lambda: change(name=ref.name, version=str(ref.version)))

    # -- collection --

    def _configured_workspace(self) -> Workspace | None:
        s = self.settings
        if s.subscription_id and s.resource_group and s.workspace:
            return Workspace(s.subscription_id, s.resource_group, s.workspace)
        return None

    def _scope(self, ref: ModelRef) -> tuple[Workspace | None, str | None]:
        """(workspace, registry) of the model version; the workspace also holds jobs and endpoints."""
        if ref.registry:
            return self._configured_workspace(), ref.registry
        if ref.subscription and ref.resource_group and ref.workspace:
            return Workspace(ref.subscription, ref.resource_group, ref.workspace), None
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
        from policygate.sources.azureml.transport import deadline as bound

        calls = Deadline(self._pool, self.timeout_s, PLATFORM, "Azure", guard, bound)
        call, wait = calls.call, calls.wait
        workspace, registry = self._scope(ref)
        name, version = ref.name, str(ref.version)
        project = self.settings.foundry_project_endpoint

        # the Foundry project's deployments do not depend on the model: asked for alongside it
        foundry_what = f"list model deployments of Foundry project {(project or '').rsplit('/', 1)[-1]}"
        foundry_future = (
            call(foundry_what, self._foundry_deployments, project, name, version) if project else None
        )

        if registry:
            what = f"connect to registry {registry}"
            registry_client = wait(what, call(what, self.clients.registry, registry))
            what = f"get model {name}:{version} in registry {registry}"
            model = wait(what, call(what, registry_client.models.get, name, version))
            where = f"azureml://registries/{registry}"
        else:
            assert workspace is not None
            what = f"get model {name}:{version} in workspace {workspace.name}"
            model = wait(what, call(what, self.clients.workspace(workspace).models.get, name, version))
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
        inputs = job_inputs(job) if job is not None else []
        data_futures: list[tuple[str, str | None, AssetRef, Future[Any] | None]] = []
        for key, context, asset in inputs:
            future = None
            if ml is not None and workspace and asset.version and asset.in_workspace(*workspace.parts):
                future = call(
                    f"get data {asset.name}:{asset.version}", ml.data.get, asset.name, asset.version
                )
            data_futures.append((key, context, asset, future))

        endpoints = wait(endpoints_what, endpoints_future) if endpoints_future else []
        deployment_futures = [
            (
                ep,
                call(f"list deployments of endpoint {ep.name}", listed, ml.online_deployments.list, ep.name),
            )
            for ep in endpoints
        ]
        datasets = [
            dataset(key, context, asset, wait(f"get data {asset.name}:{asset.version}", f) if f else None)
            for key, context, asset, f in data_futures
        ]
        serving: list[tuple[Any, list[Any]]] = []
        for ep, future in deployment_futures:
            deployments = wait(f"list deployments of endpoint {ep.name}", future)
            matched = [d for d in deployments if serves(d, name, version, workspace, registry)]
            if matched:
                serving.append((ep, matched))

        deployment: Deployment | None = None
        deployment_gaps: list[str] = []
        if serving and workspace is not None:
            assignments, deployment_gaps = self._role_assignments(serving, workspace.subscription, calls)
            deployment, more_gaps = deployment_of(serving, assignments)
            deployment_gaps += more_gaps
        if foundry_future is not None:
            model_deployments = wait(foundry_what, foundry_future)
            if model_deployments:
                deployment = deployment or Deployment()
                deployment.model_deployments = model_deployments

        parts = parts_of(self.tags, ref, workspace, registry, where, model, job, datasets)
        parts.deployment = deployment
        parts.gaps += deployment_gaps
        parts.calls = calls.calls
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
        from policygate.sources.azureml.transport import deadline

        if self._files is None:
            self._files = AzureArtifactReader(self.artifacts, self.clients.credential, self.clients.options)
        try:
            with deadline(time.monotonic() + self.artifacts.timeout_s):
                return self._files.read(ml, model_uri)
        except ArtifactsUnavailable as exc:
            return unverified(model_uri or "?", exc, self.artifacts)
        except Exception as exc:  # noqa: BLE001 - storage refused, ETag moved, ...: named
            why = ArtifactsUnavailable(f"{type(exc).__name__}: {describe(exc)}")
            return unverified(model_uri or "?", why, self.artifacts)

    def _endpoints(self, ml: Any) -> list[Any]:
        if self.settings.endpoints:
            return [ml.online_endpoints.get(name) for name in self.settings.endpoints]
        return list(ml.online_endpoints.list())

    def _role_assignments(
        self,
        serving: list[tuple[Any, list[Any]]],
        subscription: str,
        calls: Deadline,
    ) -> tuple[list[RoleAssignment], list[str]]:
        """Role assignments of the serving endpoints' identities, at, above or below the subscription."""
        principals: list[str] = []
        gaps: list[str] = []
        for ep, _ in serving:
            ids, complete = principal_ids(ep.identity)
            principals += [p for p in ids if p not in principals]
            if not complete:
                gaps.append("deployment.identity.role_assignments")
        if not principals:
            return [], sorted(set(gaps))
        auth = self.clients.authorization(subscription)
        call, wait = calls.call, calls.wait
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
        """``guard``, every request it sends ending by ``at`` (the collection's deadline)."""
        from policygate.sources.azureml.transport import deadline

        with deadline(at):
            return guard(what, fn, *args)
