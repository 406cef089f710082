"""``POLICYGATE_DIRECTORY=scim:URL``: any SCIM 2.0 directory (RFC 7643/7644) through scim2-client.

People are looked up by ``userName`` in batches (``filter=userName eq "a" or userName eq "b"``, one
call per batch), their groups from ``groups[].display`` or, when the server does not maintain that
attribute, one ``Groups`` search on ``members.value`` per batch; ``manager`` and ``department`` from
the enterprise extension. Service identities are not SCIM users: a principal id not found is
reported as not found (ACC-005 then finds no active human owner).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from policygate.sources.directory import DirectoryError, Entry

BATCH = 50  # ids per filter: short enough for any server's URL limit
SERVICE_TYPES = {"service", "serviceaccount", "service account", "bot", "application"}


def _quoted(value: str) -> str:
    """A SCIM filter string literal (RFC 7644 3.4.2.2: JSON string), so an id cannot add a clause."""
    return json.dumps(value)


class ScimDirectory:
    provider = "scim"

    def __init__(self, url: str, token: str | None, timeout_s: float) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self._scim: Any = None

    def _client(self) -> Any:
        if self._scim is None:
            from httpx2 import Client  # imported on first use: scim2 and httpx2 cost ~1 s to import
            from scim2_client.engines.httpx2 import SyncSCIMClient
            from scim2_models import EnterpriseUser, Group, ResourceType, ScimProvider, User

            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            http = Client(base_url=self.url, headers=headers, timeout=self.timeout_s)
            # the schemas are RFC 7643's, known here: no discovery round trip before the first lookup
            provider = ScimProvider(
                models=[User, EnterpriseUser, Group],
                resource_types=[
                    ResourceType.from_resource(User[EnterpriseUser]),
                    ResourceType.from_resource(Group),
                ],
            )
            self._scim = SyncSCIMClient(http, provider=provider)
        return self._scim

    def lookup(self, ids: Iterable[str]) -> dict[str, Entry]:
        from scim2_client.errors import SCIMClientException
        from scim2_models import SCIMException

        wanted = sorted({i.strip() for i in ids if i.strip()})
        out: dict[str, Entry] = {}
        try:
            for start in range(0, len(wanted), BATCH):
                out.update(self._batch(wanted[start : start + BATCH]))
        except (SCIMClientException, SCIMException, OSError) as exc:
            raise DirectoryError(self.provider, f"{self.url}: {type(exc).__name__}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - a library error of any other kind: still fail closed
            raise DirectoryError(self.provider, f"{self.url}: {type(exc).__name__}: {exc}") from None
        return out

    def _batch(self, ids: list[str]) -> dict[str, Entry]:
        from scim2_models import EnterpriseUser, Group, ScimFilter, SearchRequest, User

        scim = self._client()
        users = scim.query(
            User[EnterpriseUser],
            query_parameters=SearchRequest(
                filter=ScimFilter(" or ".join(f"userName eq {_quoted(i)}" for i in ids)), count=len(ids)
            ),
        )
        found = [u for u in (users.resources or []) if u.user_name]
        groups: dict[str, list[str]] = {}
        need = [u.id for u in found if u.groups is None and u.id]
        if need:
            listed = scim.query(
                Group,
                query_parameters=SearchRequest(
                    filter=ScimFilter(" or ".join(f"members.value eq {_quoted(i)}" for i in need))
                ),
            )
            for g in listed.resources or []:
                for m in g.members or []:
                    groups.setdefault(str(m.value), []).append(str(g.display_name or g.id))
        out: dict[str, Entry] = {}
        for u in found:
            ext = u[EnterpriseUser]
            names = (
                [str(g.display or g.value) for g in u.groups]
                if u.groups is not None
                else groups.get(u.id, [])
            )
            out[u.user_name.strip().lower()] = Entry(
                id=u.user_name,
                found=True,
                active=u.active is True,
                kind="service" if (u.user_type or "").strip().lower() in SERVICE_TYPES else "person",
                groups=tuple(sorted(names)),
                manager=(ext.manager.value if ext is not None and ext.manager is not None else None),
                department=ext.department if ext is not None else None,
            )
        return out

    def close(self) -> None:
        if self._scim is not None:
            self._scim.client.close()
