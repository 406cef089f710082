"""``POLICYGATE_DIRECTORY=graph``: Microsoft Entra ID through Microsoft Graph (docs/identity.md).

azure-core's ``PipelineClient`` against Graph REST, with the Azure source's azure-identity credential
(scope ``{POLICYGATE_GRAPH_URL}/.default``): no new dependency, ~0.1 s import, where ``msgraph-sdk``
adds ~190 MB and seconds of import for the seven endpoints used here. Requests go in JSON ``$batch``
calls of up to 20: round one reads each id as a user (by userPrincipalName or object id) or a
service principal (by object id); round two the users' transitive groups and each service
principal's owners and its application's credentials. Federated credentials are listed as
``federated`` (ACC-005 does not count them as secrets).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from policygate.sources.directory import Credential, DirectoryError, Entry

BATCH = 20  # Graph's JSON batching limit
MAX_PAGES = 20  # nextLink pages followed per listing (groups, owners): bounded
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
USER_SELECT = "id,userPrincipalName,accountEnabled,userType,employeeLeaveDateTime,department"
MANAGER = "manager($select=id,userPrincipalName)"
SP_SELECT = "id,appId,displayName,accountEnabled,servicePrincipalType,passwordCredentials,keyCredentials"


def _left(leave: Any, now: datetime) -> bool:
    """employeeLeaveDateTime in the past: the person has left, whatever accountEnabled says."""
    if not isinstance(leave, str) or not leave.strip():
        return False
    try:
        return datetime.fromisoformat(leave.replace("Z", "+00:00")) <= now
    except ValueError:
        return True  # a leave date Graph sent but nobody can read: not an active person


def user_entry(asked: str, user: dict[str, Any], groups: list[str], now: datetime) -> Entry:
    """A Graph user as a directory entry (pure: unit-tested on Microsoft's example shapes)."""
    manager = user.get("manager") or {}
    left = _left(user.get("employeeLeaveDateTime"), now)
    return Entry(
        id=str(user.get("userPrincipalName") or asked),
        found=True,
        active=user.get("accountEnabled") is True and not left,
        left=left,
        kind="person",  # Member or Guest: a person either way
        groups=tuple(sorted(groups, key=str.lower)),
        manager=manager.get("userPrincipalName") or manager.get("id"),
        department=user.get("department"),
    )


def sp_entry(asked: str, sp: dict[str, Any], owners: list[str], app: dict[str, Any] | None) -> Entry:
    """A service principal (and its application's credentials, when it has one) as an entry."""
    creds: list[Credential] = []
    for holder in (sp, app or {}):
        creds += [Credential("secret", c.get("endDateTime")) for c in holder.get("passwordCredentials") or []]
        creds += [Credential("certificate", c.get("endDateTime")) for c in holder.get("keyCredentials") or []]
    creds += [Credential("federated") for _ in (app or {}).get("federatedIdentityCredentials") or []]
    return Entry(
        id=asked,
        found=True,
        active=sp.get("accountEnabled") is True,
        kind="service",
        owners=tuple(owners),
        credentials=tuple(creds),
    )


class GraphDirectory:
    provider = "graph"

    def __init__(
        self, url: str, credential: Any, transport: Any, timeout_s: float, retry_total: int = 2
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._credential = credential
        self._transport = transport
        self._retry_total = retry_total
        self._pipeline: Any = None
        self.calls = 0  # HTTP calls to Graph (batches and pages): the benchmarks count them

    def _client(self) -> Any:
        if self._pipeline is None:
            from azure.core import PipelineClient
            from azure.core.pipeline.policies import (
                BearerTokenCredentialPolicy,
                HeadersPolicy,
                RetryPolicy,
                UserAgentPolicy,
            )
            from azure.core.pipeline.transport import RequestsTransport

            if self._credential is None:
                from azure.identity import DefaultAzureCredential

                self._credential = DefaultAzureCredential()
            policies = [
                HeadersPolicy(),
                UserAgentPolicy("policygate"),
                RetryPolicy(retry_total=self._retry_total),
                BearerTokenCredentialPolicy(self._credential, f"{self.url}/.default"),
            ]
            transport = self._transport if self._transport is not None else RequestsTransport()
            self._pipeline = PipelineClient(self.url, policies=policies, transport=transport)
        return self._pipeline

    def _send(self, method: str, url: str, body: Any = None) -> dict[str, Any]:
        from azure.core.rest import HttpRequest

        self.calls += 1
        request = HttpRequest(method, url, json=body)
        response = self._client().send_request(
            request, connection_timeout=self.timeout_s, read_timeout=self.timeout_s
        )
        if response.status_code >= 400:
            raise DirectoryError(
                self.provider, f"{method} {url}: HTTP {response.status_code}: {_error(response)}"
            )
        data = response.json()
        if not isinstance(data, dict):
            raise DirectoryError(self.provider, f"{method} {url}: not a JSON object")
        return data

    def _batch(self, urls: dict[str, str]) -> dict[str, tuple[int, dict[str, Any]]]:
        """Each relative URL's (status, body), by key, in $batch calls of up to 20."""
        keys = list(urls)
        out: dict[str, tuple[int, dict[str, Any]]] = {}
        for start in range(0, len(keys), BATCH):
            chunk = keys[start : start + BATCH]
            ids = {str(n): k for n, k in enumerate(chunk)}
            batch = {"requests": [{"id": n, "method": "GET", "url": urls[k]} for n, k in ids.items()]}
            answer = self._send("POST", f"{self.url}/v1.0/$batch", batch)
            for r in answer.get("responses") or []:
                key = ids.get(str(r.get("id")))
                if key is not None:
                    out[key] = (
                        int(r.get("status") or 0),
                        r.get("body") if isinstance(r.get("body"), dict) else {},
                    )
        for key in keys:
            status, body = out.get(key, (0, {}))
            if status == 404 or 200 <= status < 300:
                continue
            message = (body.get("error") or {}).get("message")
            raise DirectoryError(
                self.provider, f"GET {urls[key]}: HTTP {status}: {message or 'no answer in the batch'}"
            )
        return out

    def _all(self, first: dict[str, Any]) -> list[dict[str, Any]]:
        """A listing's values, following @odata.nextLink (bounded)."""
        values = list(first.get("value") or [])
        link, pages = first.get("@odata.nextLink"), 1
        while isinstance(link, str) and pages < MAX_PAGES:
            page = self._send("GET", link)
            values += page.get("value") or []
            link, pages = page.get("@odata.nextLink"), pages + 1
        return [v for v in values if isinstance(v, dict)]

    def lookup(self, ids: Iterable[str]) -> dict[str, Entry]:
        try:
            return self._lookup(sorted({i.strip() for i in ids if i and i.strip()}))
        except DirectoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - azure-core, credential or transport: fail closed
            raise DirectoryError(self.provider, f"{self.url}: {type(exc).__name__}: {exc}") from None

    def _lookup(self, wanted: list[str]) -> dict[str, Entry]:
        first: dict[str, str] = {}
        for i in wanted:
            first[f"user:{i}"] = f"{_user_path(i)}?$select={USER_SELECT}&$expand={MANAGER}"
            if GUID.match(i):
                first[f"sp:{i}"] = f"/servicePrincipals/{i}?$select={SP_SELECT}"
        found = self._batch(first) if first else {}
        users = {i: b for i in wanted if (s := found.get(f"user:{i}")) and 200 <= s[0] < 300 for b in [s[1]]}
        sps = {i: b for i in wanted if (s := found.get(f"sp:{i}")) and 200 <= s[0] < 300 for b in [s[1]]}
        second: dict[str, str] = {}
        for i, u in users.items():
            second[f"groups:{i}"] = f"/users/{u.get('id')}/transitiveMemberOf?$select=id,displayName"
        for i, sp in sps.items():
            second[f"owners:{i}"] = f"/servicePrincipals/{sp.get('id')}/owners?$select=id,userPrincipalName"
            if sp.get("appId") and sp.get("servicePrincipalType") != "ManagedIdentity":
                of_app = f"/applications(appId='{sp.get('appId')}')"
                second[f"app:{i}"] = f"{of_app}?$select=id,passwordCredentials,keyCredentials"
                second[f"fic:{i}"] = f"{of_app}/federatedIdentityCredentials"
        more = self._batch(second) if second else {}

        def listing(key: str) -> list[dict[str, Any]]:
            status, body = more.get(key, (404, {}))
            return self._all(body) if 200 <= status < 300 else []

        now = datetime.now(UTC)
        out: dict[str, Entry] = {}
        for i, u in users.items():
            groups = [
                str(g.get("displayName"))
                for g in listing(f"groups:{i}")
                if g.get("@odata.type") == "#microsoft.graph.group" and g.get("displayName")
            ]
            out[i.lower()] = user_entry(i, u, groups, now)
        for i, sp in sps.items():
            owners = [str(o.get("userPrincipalName") or o.get("id")) for o in listing(f"owners:{i}")]
            app_status, app = more.get(f"app:{i}", (404, {}))
            application = dict(app) if 200 <= app_status < 300 else None
            if application is not None:
                application["federatedIdentityCredentials"] = listing(f"fic:{i}")
            out[i.lower()] = sp_entry(i, sp, owners, application)
        return out

    def close(self) -> None:
        if self._pipeline is not None:
            self._pipeline.close()


def _user_path(upn: str) -> str:
    """/users/{upn}; a UPN starting with ``$`` must be addressed as /users('$…') (Graph reference)."""
    if upn.startswith("$"):
        return "/users('" + quote(upn.replace("'", "''"), safe="@$") + "')"
    return f"/users/{quote(upn, safe='@')}"


def _error(response: Any) -> str:
    try:
        body = response.json()
        return str((body.get("error") or {}).get("message") or "")[:300]
    except Exception:  # noqa: BLE001 - a body that is not Graph's error shape
        return response.reason or ""
