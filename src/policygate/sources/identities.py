"""``identities`` of the evidence: the owner, each approver and the deployment identity, looked up in
the directory in one batched lookup (services' owners in a second)."""

from __future__ import annotations

from policygate.evidence import DirectoryIdentity, EvidenceV1, Identities, IdentityCredential, IdentityOwner
from policygate.sources.directory import Directory, Entry


def _identity(entry: Entry, source: str, owners: list[IdentityOwner] | None = None) -> DirectoryIdentity:
    return DirectoryIdentity(
        id=entry.id,
        found=entry.found,
        active=entry.found and entry.active,
        left=entry.found and entry.left,
        kind=entry.kind if entry.found and entry.kind in ("person", "service") else None,  # type: ignore[arg-type]
        groups=list(entry.groups),
        manager=entry.manager,
        department=entry.department,
        source=source,
        owners=owners or [],
        credentials=[IdentityCredential(type=c.type, expires=c.expires) for c in entry.credentials],
    )


def identities_of(evidence: EvidenceV1, directory: Directory) -> tuple[Identities, list[str]]:
    """The identities and the gaps (``identities.owner``: named but unknown; ``identities.deployment``
    likewise); raises DirectoryError when the directory cannot answer."""
    owner = (evidence.ownership.owner or "").strip()
    approvers = sorted({a.by.strip() for a in evidence.approvals if a.by.strip()}, key=str.lower)
    dep = evidence.deployment
    principal = (dep.identity.principal_id or "").strip() if dep and dep.identity else ""
    ids = [i for i in [owner, principal, *approvers] if i]
    found = directory.lookup(ids) if ids else {}

    def entry(i: str) -> Entry:
        return found.get(i.lower()) or Entry(id=i, found=False)

    service_owners: list[IdentityOwner] = []
    if principal and entry(principal).found and entry(principal).owners:
        people = directory.lookup(entry(principal).owners)
        for o in entry(principal).owners:
            person = _identity(people.get(o.strip().lower()) or Entry(id=o, found=False), directory.provider)
            service_owners.append(
                IdentityOwner(**person.model_dump(include={"id", "found", "active", "kind"}))
            )
    identities = Identities(
        directory=directory.provider,
        owner=_identity(entry(owner), directory.provider) if owner else None,
        approvers=[_identity(entry(a), directory.provider) for a in approvers],
        deployment=_identity(entry(principal), directory.provider, service_owners) if principal else None,
    )
    gaps = [
        f"identities.{k}"
        for k, v in (("owner", identities.owner), ("deployment", identities.deployment))
        if v is not None and not v.found
    ]
    return identities, gaps
