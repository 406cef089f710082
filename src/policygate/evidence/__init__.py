"""Evidence document v1: the one harmonised input every policy reads.

Missing data is explicit (``collection.gaps``), never silently absent, so a
policy can deny on it. Unknown fields are refused so a typo in a hand-written
evidence file is an error instead of a silently ignored field.

The parts live in modules by concern (``request``, ``lineage``, ``approvals``, ``deployment``,
``artifacts``, ``directory``, ``lifecycle``, ``collection``; the whole document in ``document``);
every name is imported from here (``from policygate.evidence import Target``), the documented path.
"""

from __future__ import annotations

from policygate.evidence.approvals import Approval, Ownership
from policygate.evidence.artifacts import (
    ArtifactFile,
    Artifacts,
    ArtifactSignature,
    ArtifactsUnverified,
    RecordedDigest,
)
from policygate.evidence.collection import Collection, Conflict, SourceStatus
from policygate.evidence.deployment import Deployment, Endpoint, Identity, ModelDeployment, RoleAssignment
from policygate.evidence.directory import DirectoryIdentity, Identities, IdentityCredential, IdentityOwner
from policygate.evidence.document import SCHEMA_ID, EvidenceV1, canonical_json, digest, json_schema
from policygate.evidence.fields import ONE_LINE, STAGES, TEXT, Stage
from policygate.evidence.lifecycle import Lifecycle, LifecycleEvent, LifecycleKind, LifecycleReview
from policygate.evidence.lineage import Code, Dataset, Experiment, Lineage, Run
from policygate.evidence.request import RUN_URL, RUN_URL_MAX, TICKET_MAX, Change, Request, Subject, Target

__all__ = [
    "ONE_LINE",
    "RUN_URL",
    "RUN_URL_MAX",
    "SCHEMA_ID",
    "STAGES",
    "TEXT",
    "TICKET_MAX",
    "Approval",
    "ArtifactFile",
    "ArtifactSignature",
    "Artifacts",
    "ArtifactsUnverified",
    "Change",
    "Code",
    "Collection",
    "Conflict",
    "Dataset",
    "Deployment",
    "DirectoryIdentity",
    "Endpoint",
    "EvidenceV1",
    "Experiment",
    "Identities",
    "Identity",
    "IdentityCredential",
    "IdentityOwner",
    "Lifecycle",
    "LifecycleEvent",
    "LifecycleKind",
    "LifecycleReview",
    "Lineage",
    "ModelDeployment",
    "Ownership",
    "RecordedDigest",
    "Request",
    "RoleAssignment",
    "Run",
    "SourceStatus",
    "Stage",
    "Subject",
    "Target",
    "canonical_json",
    "digest",
    "json_schema",
]
