"""Azure ML SDK entities -> evidence fields: pure functions of what the SDK answered (tested without
Azure in tests/unit/test_azureml_mapping.py). Azure's SDK objects are read with ``getattr`` so a
missing attribute is a gap, not a crash."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from policygate.config.tags import TagMapping
from policygate.evidence import (
    Code,
    Dataset,
    Deployment,
    Endpoint,
    Experiment,
    Identity,
    Lineage,
    RoleAssignment,
    Run,
    Subject,
)
from policygate.refs import ModelRef
from policygate.sources.azureml.guard import PLATFORM
from policygate.sources.azureml.uris import AssetRef, parse_asset_uri
from policygate.sources.base import Parts, gaps_of
from policygate.sources.tags import approvals_from, ownership_from

APPROVALS_FROM_TAG = "azureml:model-version-tag"
APPROVALS_FROM_PROPERTY = "azureml:model-version-property"
T = TypeVar("T")

_AUTH_MODES = {"key": "key", "amltoken": "aml_token", "aadtoken": "aad_token"}
_DATA_INPUT_TYPES = {"uri_file", "uri_folder", "mltable"}
# Where jobs record the source commit: Azure ML's own git properties, then MLflow's tags.
_COMMIT_KEYS = ("azureml.git.commit", "mlflow.source.git.commit")
_REPOSITORY_KEYS = ("azureml.git.repository_uri", "mlflow.source.git.repoURL")


@dataclass(frozen=True)
class Workspace:
    """An Azure ML workspace (or hub-based Foundry project): it holds models, jobs and endpoints."""

    subscription: str
    resource_group: str
    name: str

    @property
    def parts(self) -> tuple[str, str, str]:
        return self.subscription, self.resource_group, self.name

    @property
    def arm_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{self.name}"
        )


def parts_of(
    mapping: TagMapping,
    ref: ModelRef,
    workspace: Workspace | None,
    registry: str | None,
    where: str,
    model: Any,
    job: Any,
    datasets: list[Dataset],
) -> Parts:
    """The model version's subject, ownership, lineage and approvals (the deployment and files come apart)."""
    tags = str_dict(getattr(model, "tags", None))
    properties = str_dict(getattr(model, "properties", None))
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
        created_at=iso(getattr(created, "created_at", None)),
        created_by=getattr(created, "created_by", None) or None,
        tags=tags,
        properties=properties,
        stage=getattr(model, "stage", None) or None,
    )
    ownership = ownership_from(mapping, properties, tags)
    if tags.get(mapping.approvals, "").strip():
        approvals, approvals_ok = approvals_from(tags[mapping.approvals], APPROVALS_FROM_TAG)
    else:
        approvals, approvals_ok = approvals_from(properties.get(mapping.approvals), APPROVALS_FROM_PROPERTY)
    lineage = lineage_of(job, datasets)

    gaps = gaps_of(subject, ownership, approvals_ok, lineage)
    return Parts(PLATFORM, where, subject, ownership, lineage, approvals, None, gaps)


def lineage_of(job: Any, datasets: list[Dataset]) -> Lineage:
    if job is None:
        return Lineage()
    props = str_dict(getattr(job, "properties", None))
    created = getattr(job, "creation_context", None)
    status = getattr(job, "status", None)
    return Lineage(
        run=Run(
            platform=PLATFORM,
            id=job.name,
            status=str(getattr(status, "value", status)) if status else None,
            experiment=Experiment(name=getattr(job, "experiment_name", None) or None),
            user=getattr(created, "created_by", None) or None,
            start=iso(props.get("StartTimeUtc")) or iso(getattr(created, "created_at", None)),
            end=iso(props.get("EndTimeUtc")),
            environment=text(getattr(job, "environment", None)),
            compute=text(getattr(job, "compute", None)),
        ),
        code=Code(
            commit=next((props[k] for k in _COMMIT_KEYS if props.get(k)), None),
            repository=next((props[k] for k in _REPOSITORY_KEYS if props.get(k)), None),
            entry_point=text(getattr(job, "command", None)) or props.get("mlflow.source.name") or None,
        ),
        datasets=datasets,
    )


def job_inputs(job: Any) -> list[tuple[str, str | None, AssetRef]]:
    """Data inputs of the job: (input name, context, parsed reference); literals and models are skipped."""
    found: list[tuple[str, str | None, AssetRef]] = []
    for key, value in (getattr(job, "inputs", None) or {}).items():
        uri = input_uri(value)
        kind = str(getattr(value, "type", "") or "").lower()
        if uri and (not kind or kind in _DATA_INPUT_TYPES):
            found.append((key, "training", parse_asset_uri(uri)))
    # AutoML jobs name their data by role instead of in ``inputs``
    for attr, context in (
        ("training_data", "training"),
        ("validation_data", "validation"),
        ("test_data", "test"),
    ):
        uri = input_uri(getattr(job, attr, None))
        if uri:
            found.append((attr, context, parse_asset_uri(uri)))
    return found


def input_uri(value: Any) -> str | None:
    if value is None or isinstance(value, (str, int, float, bool)):
        return None
    from azure.ai.ml.exceptions import ValidationException

    try:
        path = value.path  # NodeInput.path raises ValidationException for a literal input
    except (AttributeError, ValidationException):
        return None
    return path if isinstance(path, str) and path.strip() else None


def dataset(key: str, context: str | None, asset: AssetRef, data: Any) -> Dataset:
    if asset.kind == "path" or not asset.name:
        return Dataset(name=key, source=asset.uri, context=context)
    return Dataset(
        name=asset.name,
        version=asset.version,
        source=(getattr(data, "path", None) or asset.uri) if data is not None else asset.uri,
        context=context,
    )


def serves(
    deployment: Any, name: str, version: str, workspace: Workspace | None, registry: str | None
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
    return workspace is not None and asset.in_workspace(*workspace.parts)


def principal_ids(identity: Any) -> tuple[list[str], bool]:
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


def normal(value: Any) -> str | None:
    """Enum or string to lower-case text ("Enabled" -> "enabled")."""
    value = getattr(value, "value", value)
    if value is None:
        return None
    return str(value).strip().lower() or None


def auth_mode(value: Any) -> str | None:
    text = normal(value)
    if text is None:
        return None
    return _AUTH_MODES.get(text.replace("_", ""), text)


def exposure(ep: Any, deployments: list[Any]) -> tuple[bool, bool, bool, str]:
    """Sort key: the most exposed endpoint first (non-Entra auth, public network, public egress)."""
    egress = {normal(getattr(d, "egress_public_network_access", None)) for d in deployments}
    return (
        auth_mode(getattr(ep, "auth_mode", None)) == "aad_token",
        normal(getattr(ep, "public_network_access", None)) == "disabled",
        egress == {"disabled"},
        str(ep.name),
    )


def deployment_of(
    serving: list[tuple[Any, list[Any]]], assignments: list[RoleAssignment]
) -> tuple[Deployment, list[str]]:
    """The most exposed serving endpoint, with the role assignments of every serving endpoint's identity."""
    ep, deployments = sorted(serving, key=lambda s: exposure(*s))[0]
    egress_values = {normal(getattr(d, "egress_public_network_access", None)) for d in deployments}
    egress = (
        "enabled"
        if "enabled" in egress_values
        else (egress_values.pop() if len(egress_values) == 1 else None)
    )
    endpoint = Endpoint(
        name=str(ep.name),
        auth_mode=auth_mode(getattr(ep, "auth_mode", None)),
        public_network_access=normal(getattr(ep, "public_network_access", None)),
        egress_public_network_access=egress,
    )
    gaps = []
    if endpoint.auth_mode is None:
        gaps.append("deployment.endpoint.auth_mode")
    if endpoint.public_network_access is None:
        gaps.append("deployment.endpoint.public_network_access")
    identity = None
    raw = getattr(ep, "identity", None)
    if raw is None or normal(getattr(raw, "type", None)) in (None, "none"):
        gaps.append("deployment.identity")
    else:
        ids, _ = principal_ids(raw)
        identity = Identity(
            type=normal(raw.type),
            principal_id=(raw.principal_id or (ids[0] if ids else None)),
            role_assignments=assignments,
        )
    return Deployment(endpoint=endpoint, identity=identity), gaps


def listed(fn: Callable[..., Iterable[T]], *args: Any) -> list[T]:
    """Call a paged list operation and read every page (the HTTP calls happen while iterating)."""
    return list(fn(*args))


def str_dict(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if v is not None}


def text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(getattr(value, "id", None) or value) if not isinstance(value, str) else value
    return text.strip() or None


def iso(value: Any) -> str | None:
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
