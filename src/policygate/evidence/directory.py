"""The people and services who answer for the model, as the identity directory sees them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from policygate.evidence.fields import ONE_LINE, Part, line


class IdentityCredential(Part):
    """A credential a service identity holds, as the directory lists it."""

    type: str = Field(max_length=32, pattern=ONE_LINE, description="secret, certificate or federated.")
    expires: str | None = line(64, "ISO-8601 end of validity; null when it never expires.")


class IdentityOwner(Part):
    """A person who owns a service identity, as the directory sees them."""

    id: str = Field(max_length=400, pattern=ONE_LINE, description="The owner's id.")
    found: bool = Field(description="The directory knows the id.")
    active: bool = Field(default=False, description="Enabled and not left (false when not found).")
    kind: Literal["person", "service"] | None = Field(default=None, description="person or service.")


class DirectoryIdentity(Part):
    """One identity (the owner, an approver, the deployment's identity) as the directory sees it."""

    id: str = Field(
        max_length=400, pattern=ONE_LINE, description="The id looked up (owner tag, approver, principal id)."
    )
    found: bool = Field(description="The directory knows the id.")
    active: bool = Field(default=False, description="Enabled and not left (false when not found).")
    left: bool = Field(
        default=False,
        description="The directory says the person has left (Graph: employeeLeaveDateTime passed; "
        "file: left: true); false when it only says disabled, or cannot say (SCIM).",
    )
    kind: Literal["person", "service"] | None = Field(
        default=None, description="person or service; null when not found."
    )
    groups: list[str] = Field(default_factory=list, description="Groups it is a member of (display names).")
    manager: str | None = line(400, "Its manager, if the directory says.")
    department: str | None = line(256, "Its department, if the directory says.")
    source: str = Field(
        max_length=32, pattern=ONE_LINE, description="The directory provider: file, scim, graph."
    )
    owners: list[IdentityOwner] = Field(
        default_factory=list, description="Services: the people who own it, each as the directory sees them."
    )
    credentials: list[IdentityCredential] = Field(
        default_factory=list, description="Services: the credentials it holds."
    )


class Identities(Part):
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
