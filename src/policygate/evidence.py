"""Evidence document v1: the one harmonised input every policy reads.

Missing data is explicit (``collection.gaps``), never silently absent, so a
policy can deny on it. Unknown fields are refused so a typo in a hand-written
evidence file is an error instead of a silently ignored field.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from policygate.refs import RefError, parse

Stage = Literal["development", "staging", "production"]
STAGES: tuple[Stage, ...] = ("development", "staging", "production")
SCHEMA_ID: Literal["policygate.evidence/v1"] = "policygate.evidence/v1"


# One line of text: no control characters (no newline to forge a log line, no NUL, no ANSI escape).
ONE_LINE = r"^[^\x00-\x1f\x7f]*$"
# Text that may span lines (a comment): tabs and line breaks, no other control character.
TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


def _line(max_length: int, description: str) -> Any:
    """A caller-written free-text field: optional, capped, one line."""
    return Field(default=None, max_length=max_length, pattern=ONE_LINE, description=description)


class _Part(BaseModel):
    # strict: a 0 is not a false, a number is not a string; evidence says exactly what it means
    model_config = ConfigDict(extra="forbid", strict=True)


class Subject(_Part):
    """The model version the decision is about."""

    platform: Literal["mlflow", "azureml", "other"] = Field(description="Platform holding the model version.")
    name: str = Field(min_length=1, description="Registered model name.")
    version: str = Field(min_length=1, description="Model version (string, as platforms differ).")
    ref: str = Field(min_length=1, description="Canonical model reference, e.g. mlflow:models:/fraud/7.")
    aliases: list[str] = Field(default_factory=list, description="Aliases pointing at this version.")
    created_at: str | None = Field(default=None, description="ISO-8601 creation time of the version.")
    created_by: str | None = Field(default=None, description="Who registered the version, if known.")
    tags: dict[str, str] = Field(default_factory=dict, description="Version tags as recorded.")
    properties: dict[str, str] = Field(
        default_factory=dict, description="Version properties as recorded (Azure ML), else empty."
    )
    stage: str | None = Field(default=None, description="Registry stage of the version (Azure ML), if any.")

    @model_validator(mode="after")
    def _ref_names_this_version(self) -> Subject:
        """``ref`` parses as a model reference to exactly this platform, name and version (a
        supplied document cannot name one model in ``ref`` and another in ``name``)."""
        if self.platform == "other":
            return self
        try:
            ref = parse(self.ref)
        except RefError as exc:
            raise ValueError(f"ref: {exc}") from None
        if (ref.platform, ref.name, ref.version) != (self.platform, self.name, self.version):
            raise ValueError(
                f"ref {self.ref!r} does not name {self.platform} model {self.name!r} version {self.version!r}"
            )
        return self


class Target(_Part):
    """Where the model is to go."""

    stage: Stage = Field(description="Stage the model is to be promoted or deployed to.")
    environment: str | None = _line(256, "Free-form environment name, e.g. prod-eu.")


# The change on record (check --ticket/--run-url, POST /v1/decisions): the same bounds everywhere.
TICKET_MAX = 256
RUN_URL_MAX = 2048
RUN_URL = r"^https?://[^\x00-\x20\x7f]+$"  # a URL: no spaces or control characters


def _run_url(description: str) -> Any:
    return Field(default=None, max_length=RUN_URL_MAX, pattern=RUN_URL, description=description)


class Change(_Part):
    """The change a promotion belongs to, as the caller names it (``check --ticket/--run-url``, the
    body of POST /v1/decisions): checked on construction, recorded in ``request``."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    ticket: str | None = _line(TICKET_MAX, "Change ticket.")
    run_url: str | None = _run_url("The CI run that asks.")

    def fields(self) -> dict[str, str]:
        """The ``request`` fields this change sets (none when nothing was named)."""
        return {k: v for k, v in (("ticket", self.ticket), ("run_url", self.run_url)) if v is not None}


class Request(_Part):
    """Who asks for what."""

    target: Target = Field(description="Target of the promotion or deployment.")
    requested_by: str | None = _line(320, "Identity asking for the promotion.")
    caller: str | None = _line(
        400, "Authenticated identity that sent the request (set by policygate, e.g. oidc:alice@corp)."
    )
    requested_at: str | None = _line(64, "ISO-8601 time of the request.")
    ticket: str | None = _line(TICKET_MAX, "Change ticket, if any.")
    run_url: str | None = _run_url("The CI run or pipeline that asked (an http(s) URL, one line), if any.")


class Ownership(_Part):
    """Who is accountable for the model, and how risky its use is."""

    owner: str | None = Field(default=None, description="Accountable owner (a person).")
    team: str | None = Field(default=None, description="Owning team.")
    use_case: str | None = Field(default=None, description="Declared business use case.")
    risk_tier: str | None = Field(default=None, description="Declared risk tier: low, medium or high.")


class Experiment(_Part):
    """Experiment the run belongs to."""

    id: str | None = Field(default=None, description="Experiment id.")
    name: str | None = Field(default=None, description="Experiment name.")


class Run(_Part):
    """The training run (MLflow) or job (Azure ML) that produced the model."""

    platform: str = Field(description="Platform of the run/job.")
    id: str = Field(min_length=1, description="Run id (MLflow) or job name (Azure ML).")
    status: str | None = Field(default=None, description="Terminal status, e.g. FINISHED, Completed, FAILED.")
    experiment: Experiment | None = None
    user: str | None = Field(default=None, description="Author of the run/job.")
    start: str | None = Field(default=None, description="ISO-8601 start time.")
    end: str | None = Field(default=None, description="ISO-8601 end time.")
    environment: str | None = Field(
        default=None, description="Environment the job ran in (Azure ML), e.g. sklearn:4."
    )
    compute: str | None = Field(default=None, description="Compute target the job ran on (Azure ML).")


class Code(_Part):
    """Code version the model was trained from."""

    commit: str | None = Field(default=None, description="Source commit the run was built from.")
    repository: str | None = Field(default=None, description="Source repository URL.")
    entry_point: str | None = Field(default=None, description="Script or notebook that trained the model.")


class Dataset(_Part):
    """A dataset input of the training run."""

    name: str = Field(description="Dataset or data asset name.")
    digest: str | None = Field(default=None, description="Content digest of the dataset.")
    version: str | None = Field(default=None, description="Data asset version (Azure ML).")
    source: str | None = Field(default=None, description="Where the data lives (URI).")
    context: str | None = Field(default=None, description="training, validation, evaluation, ...")


class Lineage(_Part):
    """How the model was made."""

    run: Run | None = Field(default=None, description="Training run/job; null when not traceable.")
    code: Code = Field(default_factory=Code, description="Code version the run was built from.")
    datasets: list[Dataset] = Field(default_factory=list, description="Dataset inputs of the run.")


class Approval(_Part):
    """A sign-off for promoting the model to a stage."""

    by: str = Field(min_length=1, description="Approver identity.")
    decision: Literal["approved", "rejected", "withdrawn"] = Field(
        default="approved",
        description="approved, or rejected / withdrawn: the reviewer's latest entry for a stage wins, so a "
        "later rejection or withdrawal takes an earlier approval back.",
    )
    stage: str = Field(description="Stage the approval is for.")
    at: str | None = Field(default=None, description="ISO-8601 time of the approval.")
    source: str | None = Field(default=None, description="Where the approval was read from.")
    verified: bool = Field(
        default=False, description="True when recorded by policygate from an authenticated caller."
    )


class Endpoint(_Part):
    """Serving endpoint of the model."""

    name: str = Field(description="Serving endpoint name.")
    auth_mode: str | None = Field(default=None, description="key, aml_token or aad_token.")
    public_network_access: str | None = Field(default=None, description="enabled or disabled.")
    egress_public_network_access: str | None = Field(
        default=None, description="Outbound public network access of the deployment: enabled or disabled."
    )


class RoleAssignment(_Part):
    """An Azure RBAC role assignment held by the deployment identity."""

    role: str = Field(description="Role name, resolved from the role definition.")
    scope: str = Field(description="ARM scope the role is assigned at.")
    principal_id: str | None = Field(default=None, description="Principal holding the assignment.")


class Identity(_Part):
    """Managed identity the deployment runs as, and what it may access."""

    type: str | None = Field(default=None, description="system_assigned, user_assigned, ...")
    principal_id: str | None = Field(default=None, description="Entra ID object id of the identity.")
    role_assignments: list[RoleAssignment] = Field(default_factory=list)


class ModelDeployment(_Part):
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


class Deployment(_Part):
    """Where and how the model is (to be) served; null when the platform has no deployment data."""

    endpoint: Endpoint | None = Field(default=None, description="Endpoint serving the model version.")
    identity: Identity | None = Field(default=None, description="Identity the deployment runs as.")
    model_deployments: list[ModelDeployment] = Field(
        default_factory=list,
        description="Model deployments of the configured Azure AI Foundry project whose model name and "
        "version are the subject's; empty when none is configured or none deploys this version.",
    )


class ArtifactFile(_Part):
    """One file of the model version's artifacts."""

    path: str = Field(
        min_length=1,
        max_length=1024,
        pattern=ONE_LINE,
        description="Path under the model's root, /-separated.",
    )
    size: int = Field(ge=0, description="Size in bytes.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the file's bytes, hex.")


class ArtifactSignature(_Part):
    """An OpenSSF model-signing signature over the artifacts, as policygate verified it."""

    status: Literal["verified", "invalid", "absent", "unchecked"] = Field(
        default="unchecked",
        description="verified (by a configured key or certificate authority), invalid (does not verify, "
        "or signs other files), absent (no signature file), unchecked (no keys configured to check it with).",
    )
    signer: str | None = _line(
        256,
        "Who signed: the name of the configured key, or of the certificate authority whose chain the "
        "signing certificate verified against.",
    )
    method: Literal["key", "certificate"] | None = Field(
        default=None, description="How it verified: a public key, or a certificate chain."
    )
    certificate: str | None = _line(
        1024, "The signing certificate's subject (RFC 4514), when a certificate signed."
    )
    error: str | None = _line(1024, "Why it is invalid.")


class RecordedDigest(_Part):
    """A manifest digest the log recorded for this version: an earlier collected allow decision's, or
    an approval's recorded through policygate."""

    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$", description="The manifest digest it recorded.")
    decision_id: str = Field(
        max_length=64, pattern=ONE_LINE, description="That decision (or approval, ``approval:...``)."
    )
    kind: Literal["decision", "approval"] = Field(
        default="decision", description="Whether a decision or an approval recorded it."
    )
    recorded_at: str | None = _line(64, "When it was recorded.")


class Artifacts(_Part):
    """The files behind the model version, hashed when the evidence was collected."""

    digest: str = Field(
        pattern=r"^sha256:[0-9a-f]{64}$",
        description="Manifest digest: SHA-256 of the canonical JSON of the sorted [{path, sha256, size}].",
    )
    files: list[ArtifactFile] = Field(
        default_factory=list, description="Each file (the signature file excepted)."
    )
    size: int = Field(ge=0, description="Bytes in all.")
    source: str | None = _line(2048, "Where the artifacts were read (no credentials).")
    signature: ArtifactSignature = Field(default_factory=ArtifactSignature)
    recorded: list[RecordedDigest] = Field(
        default_factory=list,
        description="Manifest digests earlier collected decisions of this version recorded (newest first).",
    )


class ArtifactsUnverified(_Part):
    """The model version's files that could not be hashed, so nothing about them is verified (INT-003):
    why, and how much was read before it stopped. No manifest is recorded for them (``artifacts`` is
    null and ``collection.gaps`` names ``artifacts``)."""

    reason: Literal["size_cap", "time_budget", "store"] = Field(
        description="size_cap: larger than POLICYGATE_ARTIFACTS__MAX_BYTES; time_budget: not read and "
        "hashed within POLICYGATE_ARTIFACTS__TIMEOUT_S; store: the store refused or failed (no access, "
        "an unsupported location, no files)."
    )
    detail: str = Field(max_length=1024, pattern=ONE_LINE, description="What happened, in words.")
    source: str | None = _line(2048, "Where the files were read (no credentials).")
    size: int | None = Field(
        default=None, ge=0, description="Bytes in all, as the store listed them; null when not listed."
    )
    files: int | None = Field(default=None, ge=0, description="Files listed; null when not listed.")
    bytes_read: int = Field(default=0, ge=0, description="Bytes read and hashed before it stopped.")
    files_read: int = Field(default=0, ge=0, description="Files read and hashed in full before it stopped.")
    max_bytes: int | None = Field(default=None, ge=0, description="The size cap in force.")
    timeout_s: float | None = Field(default=None, ge=0, description="The time budget in force, seconds.")


class SourceStatus(_Part):
    """One platform asked for evidence, and whether it answered."""

    platform: str = Field(description="mlflow, azureml, ...")
    endpoint: str | None = Field(default=None, description="Where the source was read (no credentials).")
    ok: bool = Field(description="True when the source answered everything asked of it.")
    required: bool = Field(
        default=True, description="A failed required source makes evidence incomplete (EVD-001)."
    )
    error: str | None = Field(default=None, description="What failed, when ok is false.")
    read_at: str | None = Field(
        default=None,
        description="When the source's answers were read (UTC); before collection.collected_at when "
        "they came from the short evidence cache (POLICYGATE_EVIDENCE_CACHE_TTL_S).",
    )


class IdentityCredential(_Part):
    """A credential a service identity holds, as the directory lists it."""

    type: str = Field(max_length=32, pattern=ONE_LINE, description="secret, certificate or federated.")
    expires: str | None = _line(64, "ISO-8601 end of validity; null when it never expires.")


class IdentityOwner(_Part):
    """A person who owns a service identity, as the directory sees them."""

    id: str = Field(max_length=400, pattern=ONE_LINE, description="The owner's id.")
    found: bool = Field(description="The directory knows the id.")
    active: bool = Field(default=False, description="Enabled and not left (false when not found).")
    kind: Literal["person", "service"] | None = Field(default=None, description="person or service.")


class DirectoryIdentity(_Part):
    """One identity (the owner, an approver, the deployment's identity) as the directory sees it."""

    id: str = Field(
        max_length=400, pattern=ONE_LINE, description="The id looked up (owner tag, approver, principal id)."
    )
    found: bool = Field(description="The directory knows the id.")
    active: bool = Field(default=False, description="Enabled and not left (false when not found).")
    kind: Literal["person", "service"] | None = Field(
        default=None, description="person or service; null when not found."
    )
    groups: list[str] = Field(default_factory=list, description="Groups it is a member of (display names).")
    manager: str | None = _line(400, "Its manager, if the directory says.")
    department: str | None = _line(256, "Its department, if the directory says.")
    source: str = Field(
        max_length=32, pattern=ONE_LINE, description="The directory provider: file, scim, graph."
    )
    owners: list[IdentityOwner] = Field(
        default_factory=list, description="Services: the people who own it, each as the directory sees them."
    )
    credentials: list[IdentityCredential] = Field(
        default_factory=list, description="Services: the credentials it holds."
    )


class Identities(_Part):
    """Who answers for the model, as the identity directory sees them (OWN-004, APR-004, ACC-005);
    null ``directory`` when none is configured (the three rules then warn: not checked)."""

    directory: str | None = Field(
        default=None, description="The provider asked (file, scim, graph); null: none."
    )
    owner: DirectoryIdentity | None = Field(
        default=None, description="ownership.owner; null when none is named."
    )
    approvers: list[DirectoryIdentity] = Field(
        default_factory=list, description="Each distinct approver of the approvals."
    )
    deployment: DirectoryIdentity | None = Field(
        default=None, description="deployment.identity.principal_id; null when the deployment names none."
    )


class Conflict(_Part):
    """A field on which platforms disagree."""

    field: str = Field(description="Dotted path of the field the platforms disagree on.")
    values: dict[str, Any] = Field(description="Value per platform.")


class Collection(_Part):
    """How the evidence was gathered: sources, gaps and conflicts."""

    collected_at: str | None = Field(default=None, description="ISO-8601 time the evidence was assembled.")
    sources: list[SourceStatus] = Field(
        default_factory=list, description="Each platform asked, and how it went."
    )
    gaps: list[str] = Field(
        default_factory=list, description="Dotted paths of expected fields that are missing."
    )
    conflicts: list[Conflict] = Field(default_factory=list, description="Fields the platforms disagree on.")


class EvidenceV1(_Part):
    """The evidence document evaluated by OPA as ``input``."""

    schema_: Literal["policygate.evidence/v1"] = Field(
        default=SCHEMA_ID, alias="schema", description="Document type and version."
    )
    subject: Subject
    request: Request
    ownership: Ownership = Field(default_factory=Ownership)
    lineage: Lineage = Field(default_factory=Lineage)
    approvals: list[Approval] = Field(default_factory=list, description="Approvals recorded for the version.")
    deployment: Deployment | None = None
    artifacts: Artifacts | None = Field(
        default=None, description="The model version's files; null when not collected (see collection.gaps)."
    )
    artifacts_unverified: ArtifactsUnverified | None = Field(
        default=None,
        description="The model version's files that could not be hashed (INT-003); null when they were "
        "(or were not to be read).",
    )
    identities: Identities | None = Field(
        default=None, description="The owner, approvers and deployment identity as the directory sees them."
    )
    collection: Collection = Field(default_factory=Collection)

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    def to_input(self) -> dict[str, Any]:
        """The JSON object sent to OPA and stored in the log."""
        return self.model_dump(mode="json", by_alias=True)


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no insignificant whitespace: the form digests are taken over."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(obj: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(obj)).hexdigest()


def json_schema() -> dict[str, Any]:
    return EvidenceV1.model_json_schema(by_alias=True)
