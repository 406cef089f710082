"""The HTTP side of :class:`~policygate.engine.opa.OpaEngine`: one OPA server's REST API as
policygate asks it (the decision query, data, ad hoc queries, the policies and the status).

Synchronous calls go through opa-python-client's ``OpaClient`` (its requests session is reached only
through :func:`_session`); the decision query on the event loop goes through
:class:`~policygate.engine.http1.Http1Pool`. Every failure becomes an :class:`EngineError`.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from policygate.engine.catalogue import RuleLocator
from policygate.engine.errors import DECIDE, DECISION_PACKAGE, DECISION_RULE, STRICT, EngineError
from policygate.engine.http1 import Http1Pool

# requests is imported where it is used (with opa_client, by _client): an in-process engine,
# which holds an OpaHttp's methods but never calls them, does not load it.
if TYPE_CHECKING:
    import requests
    from opa_client import OpaClient


class OpaHttp:
    """Talks to the OPA at ``url``: retries off, the bearer token when there is one, every answer
    checked. :class:`~policygate.engine.inproc.InprocessEngine` answers the same calls without HTTP."""

    # the end of the timeout message: what else than the policy may be slow
    TIMEOUT_HINT = ", or OPA is overloaded"

    # engine state the HTTP side reads (set by OpaEngine)
    _lock: threading.Lock
    _async: tuple[asyncio.AbstractEventLoop, str, Http1Pool] | None

    def __init__(
        self,
        url: str,
        timeout_s: float,
        *,
        describe: Callable[[list[dict[str, Any]]], str] | None,
        token: str | None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EngineError("unreachable", f"invalid OPA URL {url!r}: expected http(s)://host:port")
        self.url = url.rstrip("/")
        # names the rule an evaluation error happened in (engine.catalogue.RuleLocator.describe)
        self.describe = describe
        # the bearer token OPA wants: the managed OPA's own secret, or POLICYGATE_OPA_TOKEN
        self.token = token
        self.timeout_s = timeout_s
        self.client = self._client(self.url)

    def _client(self, url: str) -> OpaClient:
        """The synchronous client for ``url``, sending the bearer token when there is one."""
        from opa_client import OpaClient  # (with aiohttp: a tenth of a second an in-process run skips)

        parts = urlsplit(url)
        client = OpaClient(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (443 if parts.scheme == "https" else 80),
            ssl=parts.scheme == "https",
            retries=0,
            timeout=self.timeout_s,
        )
        if self.token:
            _session(client).headers["Authorization"] = f"Bearer {self.token}"
        return client

    def healthy(self) -> bool:
        return bool(self.client.check_health())

    def _query(self, evidence: dict[str, Any], params: dict[str, str] = STRICT) -> dict[str, Any]:
        """OPA's whole answer to the decision query (``params``: the query's options)."""
        import requests

        try:
            answer = self.client.query_rule(evidence, DECISION_PACKAGE, DECISION_RULE, params)
        except requests.HTTPError as exc:
            response = exc.response
            if response is None:
                raise EngineError("policy_error", "OPA refused the query: no response") from exc
            raise self._refused(response.status_code, response.content) from exc
        except requests.ReadTimeout as exc:
            raise self._timed_out() from exc
        except requests.RequestException as exc:
            raise EngineError("unreachable", f"OPA unreachable at {self.url}: {type(exc).__name__}") from exc
        except ValueError as exc:
            raise EngineError("policy_error", f"OPA answered with invalid JSON: {exc}") from exc
        if not isinstance(answer, dict):
            raise EngineError("policy_error", "OPA answered with something other than a JSON object")
        return answer

    async def _query_async(self, evidence: dict[str, Any], pool: Http1Pool | None = None) -> dict[str, Any]:
        """:meth:`_query` with :data:`DECIDE` on the event loop, over kept-alive connections."""
        body = wire({"input": evidence})
        query = "&".join(f"{k}={v}" for k, v in DECIDE.items())
        path = f"/v1/data/{DECISION_PACKAGE}/{DECISION_RULE}?{query}"
        try:
            status, answer = await (pool or self._pool()).post_json(path, body)
        except TimeoutError as exc:  # the same words as the synchronous client's
            raise self._timed_out() from exc
        except OSError as exc:  # refused, reset, closed, TLS, malformed HTTP
            raise EngineError("unreachable", f"OPA unreachable at {self.url}: ConnectionError") from exc
        if status >= 300:
            raise self._refused(status, answer)
        try:
            result = json.loads(answer)
        except ValueError as exc:
            raise EngineError("policy_error", f"OPA answered with invalid JSON: {exc}") from exc
        if not isinstance(result, dict):
            raise EngineError("policy_error", "OPA answered with something other than a JSON object")
        return result

    def _pool(self) -> Http1Pool:
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop or self._async[1] != self.url:
            if self._async is not None:
                self._async[2].close()
            self._async = (loop, self.url, self.new_pool())
        return self._async[2]

    def new_pool(self) -> Http1Pool:
        """Kept-alive connections to this OPA for one event loop (the caller closes it)."""
        parts = urlsplit(self.url)
        tls = parts.scheme == "https"
        return Http1Pool(
            parts.hostname or "127.0.0.1",
            parts.port or (443 if tls else 80),
            tls=tls,
            timeout_s=self.timeout_s,
            token=self.token,
        )

    def _timed_out(self) -> EngineError:
        """OPA took the query but gave no answer in time: the policy is slow, OPA is there."""
        return EngineError(
            "policy_timeout",
            f"policy evaluation exceeded {self.timeout_s:g} s (POLICYGATE_OPA_TIMEOUT_S): a rule loops over "
            f"too much (e.g. a comprehension over a large range){self.TIMEOUT_HINT}",
        )

    def _refused(self, status: int, body: bytes) -> EngineError:
        """The error for a query OPA answered with an error: an evaluation error names its rule."""
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        errors = parsed.get("errors") if isinstance(parsed, dict) else None
        if isinstance(errors, list) and errors and all(isinstance(e, dict) for e in errors):
            describe = self.describe or RuleLocator([]).describe
            return EngineError("policy_error", f"policy error: {describe(errors)}")
        return EngineError("policy_error", f"OPA refused the query: {opa_error_of(status, body)}")

    def put_data(self, path: str, value: Any) -> None:
        """Replace the data document at ``path`` (``PUT /v1/data/{path}``), e.g. the active waivers."""
        import requests

        try:
            resp = _session(self.client).put(
                f"{self.url}/v1/data/{path.strip('/')}", json=value, timeout=self.client.timeout
            )
        except requests.RequestException as exc:
            raise EngineError("unreachable", f"OPA unreachable at {self.url}: {type(exc).__name__}") from exc
        if resp.status_code >= 300:
            raise EngineError("policy_error", f"OPA refused to write data/{path}: {_opa_error(resp)}")

    def get_data(self, path: str) -> Any:
        """The data document at ``path`` (``GET /v1/data/{path}``); None when undefined."""
        return self._get(f"/v1/data/{path.strip('/')}").get("result")

    def bundle_status(self) -> dict[str, dict[str, Any]] | None:
        """Each bundle's status as OPA reports it (``GET /v1/status``: its active revision and, when
        its newest download failed to load, ``code`` and ``message``); None when OPA's status plugin
        is off or the answer has no bundles (an OPA on files, or one not configured to report)."""
        try:
            result = self._get("/v1/status").get("result")
        except EngineError:
            return None
        bundles = result.get("bundles") if isinstance(result, dict) else None
        if not isinstance(bundles, dict) or not bundles:
            return None
        return {str(k): v for k, v in bundles.items() if isinstance(v, dict)}

    def policies(self) -> list[dict[str, Any]]:
        """The modules OPA holds (``GET /v1/policies``): id, raw text and AST (with annotations)."""
        result = self._get("/v1/policies").get("result") or []
        return [p for p in result if isinstance(p, dict)]

    def query(self, query: str, input_: Any = None) -> list[dict[str, Any]]:
        """An ad hoc Rego query (``POST /v1/query``); one bindings object per result."""
        body: dict[str, Any] = {"query": query}
        if input_ is not None:
            body["input"] = input_
        import requests

        try:
            resp = _session(self.client).post(f"{self.url}/v1/query", json=body, timeout=self.client.timeout)
        except requests.RequestException as exc:
            raise EngineError("unreachable", f"OPA unreachable at {self.url}: {type(exc).__name__}") from exc
        if resp.status_code >= 300:
            raise EngineError("policy_error", f"OPA refused the query: {_opa_error(resp)}")
        try:
            result = resp.json().get("result") or []
        except ValueError as exc:
            raise EngineError("policy_error", f"OPA answered with invalid JSON: {exc}") from exc
        return [r for r in result if isinstance(r, dict)]

    def _get(self, path: str) -> dict[str, Any]:
        import requests

        try:
            resp = _session(self.client).get(f"{self.url}{path}", timeout=self.client.timeout)
        except requests.RequestException as exc:
            raise EngineError("unreachable", f"OPA unreachable at {self.url}: {type(exc).__name__}") from exc
        if resp.status_code >= 300:
            raise EngineError("policy_error", f"OPA refused GET {path}: {_opa_error(resp)}")
        try:
            body = resp.json()
        except ValueError as exc:
            raise EngineError("policy_error", f"OPA answered with invalid JSON: {exc}") from exc
        return body if isinstance(body, dict) else {}


def _session(client: OpaClient) -> requests.Session:
    """The requests session inside ``client``: the one place that reaches into opa-python-client,
    for the calls it has no method for (data writes, ad hoc queries, plain GETs) and the token."""
    session: requests.Session = client._session
    return session


def wire(query: Any) -> bytes:
    """The query as JSON for the wire (not hashed, so orjson's number spelling is fine)."""
    try:
        return orjson.dumps(query)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits: the standard encoder has no limit
        return json.dumps(query, ensure_ascii=False).encode()


def opa_error_of(status: int, body: bytes) -> str:
    """OPA's error answer in one line: status, code and message, and each error's code and message."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return f"HTTP {status}"
    if not isinstance(parsed, dict):
        return f"HTTP {status}"
    details = "; ".join(
        f"{e.get('code', '')}: {e.get('message', '')}"
        for e in parsed.get("errors") or []
        if isinstance(e, dict)
    )
    summary = f"HTTP {status} {parsed.get('code', '')}: {parsed.get('message', '')}"
    return f"{summary} ({details})" if details else summary


def _opa_error(response: requests.Response | None) -> str:
    if response is None:
        return "no response"
    return opa_error_of(response.status_code, response.content)
