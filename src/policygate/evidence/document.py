"""The whole evidence document (``input`` to OPA), its JSON Schema and the digest of a document."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import ConfigDict, Field

from policygate.evidence.approvals import Approval, Ownership
from policygate.evidence.artifacts import Artifacts, ArtifactsUnverified
from policygate.evidence.collection import Collection
from policygate.evidence.deployment import Deployment
from policygate.evidence.directory import Identities
from policygate.evidence.fields import Part
from policygate.evidence.lifecycle import Lifecycle
from policygate.evidence.lineage import Lineage
from policygate.evidence.request import Request, Subject

SCHEMA_ID: Literal["policygate.evidence/v1"] = "policygate.evidence/v1"


class EvidenceV1(Part):
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
    lifecycle: Lifecycle | None = Field(
        default=None,
        description="Owner reviews and retirement policygate recorded for the version (LIF-001, LIF-002); "
        "null when not read (a collection always fills it).",
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
