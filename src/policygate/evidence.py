"""Evidence document v1: the one harmonised input every policy reads.

Missing data is explicit (``collection.gaps``), never silently absent, so a
policy can deny on it. Unknown fields are refused so a typo in a hand-written
evidence file is an error instead of a silently ignored field.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_ID = "policygate.evidence/v1"


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Subject(_Part):
    """The model version the decision is about."""

    platform: Literal["mlflow", "azureml", "other"] = Field(
        description="Platform holding the model version."
    )
    name: str = Field(min_length=1, description="Registered model name.")
    version: str = Field(min_length=1, description="Model version (string, as platforms differ).")
    ref: str = Field(min_length=1, description="Canonical model reference, e.g. mlflow:models:/fraud/7.")
    aliases: list[str] = Field(default_factory=list, description="Aliases pointing at this version.")
    created_at: str | None = Field(default=None, description="ISO-8601 creation time of the version.")
    created_by: str | None = Field(default=None, description="Who registered the version, if known.")
    tags: dict[str, str] = Field(default_factory=dict, description="Version tags as recorded.")


class Target(_Part):
    stage: Literal["development", "staging", "production"] = Field(
        description="Stage the model is to be promoted or deployed to."
    )
    environment: str | None = Field(default=None, description="Free-form environment name, e.g. prod-eu.")


class Request(_Part):
    target: Target
    requested_by: str | None = Field(default=None, description="Identity asking for the promotion.")
    requested_at: str | None = Field(default=None, description="ISO-8601 time of the request.")
    ticket: str | None = Field(default=None, description="Change ticket, if any.")


class Ownership(_Part):
    owner: str | None = Field(default=None, description="Accountable owner (a person).")
    team: str | None = Field(default=None, description="Owning team.")
    use_case: str | None = Field(default=None, description="Declared business use case.")
    risk_tier: str | None = Field(default=None, description="Declared risk tier: low, medium or high.")


class Experiment(_Part):
    id: str | None = None
    name: str | None = None


class Run(_Part):
    platform: str = Field(description="Platform of the run/job.")
    id: str = Field(min_length=1, description="Run id (MLflow) or job name (Azure ML).")
    status: str | None = Field(default=None, description="Terminal status, e.g. FINISHED, Completed, FAILED.")
    experiment: Experiment | None = None
    user: str | None = Field(default=None, description="Author of the run/job.")
    start: str | None = None
    end: str | None = None


class Code(_Part):
    commit: str | None = Field(default=None, description="Source commit the run was built from.")
    repository: str | None = None
    entry_point: str | None = None


class Dataset(_Part):
    name: str
    digest: str | None = Field(default=None, description="Content digest of the dataset.")
    version: str | None = Field(default=None, description="Data asset version (Azure ML).")
    source: str | None = Field(default=None, description="Where the data lives (URI).")
    context: str | None = Field(default=None, description="training, validation, evaluation, ...")


class Lineage(_Part):
    run: Run | None = Field(default=None, description="Training run/job; null when not traceable.")
    code: Code = Field(default_factory=Code)
    datasets: list[Dataset] = Field(default_factory=list)


class Approval(_Part):
    by: str = Field(min_length=1, description="Approver identity.")
    decision: Literal["approved", "rejected"] = "approved"
    stage: str = Field(description="Stage the approval is for.")
    at: str | None = Field(default=None, description="ISO-8601 time of the approval.")
    source: str | None = Field(default=None, description="Where the approval was read from.")
    verified: bool = Field(default=False, description="True when recorded by policygate from an authenticated caller.")


class Endpoint(_Part):
    name: str
    auth_mode: str | None = Field(default=None, description="key, aml_token or aad_token.")
    public_network_access: str | None = Field(default=None, description="enabled or disabled.")
    egress_public_network_access: str | None = None


class RoleAssignment(_Part):
    role: str = Field(description="Role name, resolved from the role definition.")
    scope: str = Field(description="ARM scope the role is assigned at.")
    principal_id: str | None = None


class Identity(_Part):
    type: str | None = Field(default=None, description="system_assigned, user_assigned, ...")
    principal_id: str | None = None
    role_assignments: list[RoleAssignment] = Field(default_factory=list)


class Deployment(_Part):
    endpoint: Endpoint | None = None
    identity: Identity | None = None


class SourceStatus(_Part):
    platform: str
    endpoint: str | None = None
    ok: bool
    required: bool = True
    error: str | None = None


class Conflict(_Part):
    field: str
    values: dict[str, Any]


class Collection(_Part):
    collected_at: str | None = None
    sources: list[SourceStatus] = Field(default_factory=list)
    gaps: list[str] = Field(default_factory=list, description="Dotted paths of expected fields that are missing.")
    conflicts: list[Conflict] = Field(default_factory=list)


class EvidenceV1(_Part):
    """The evidence document evaluated by OPA as ``input``."""

    schema_: Literal["policygate.evidence/v1"] = Field(default=SCHEMA_ID, alias="schema")
    subject: Subject
    request: Request
    ownership: Ownership = Field(default_factory=Ownership)
    lineage: Lineage = Field(default_factory=Lineage)
    approvals: list[Approval] = Field(default_factory=list)
    deployment: Deployment | None = None
    collection: Collection = Field(default_factory=Collection)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

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
