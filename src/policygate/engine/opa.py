"""Evaluate evidence with a real OPA server: a managed ``opa run`` child or one the user runs.

Every failure surfaces as :class:`EngineError`, so the caller can fail closed;
an undefined ``data.policygate.decision`` is an error, never an allow.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import json
import logging
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import orjson
import requests
from opa_client import OpaClient

from policygate.config.bundles import BUNDLE
from policygate.engine.http1 import Http1Pool
from policygate.engine.revision import revision_of

log = logging.getLogger(__name__)
opa_log = logging.getLogger("policygate.opa")  # the managed OPA's own output, line by line

DECISION_PACKAGE = "policygate"
DECISION_RULE = "decision"
PARAMS_PATH = "policygate_params"
REVISION_TTL_S = 30.0
# Every evaluation: a builtin error (1/0, to_number("x"), a bad time) stops the query instead of
# making the rule undefined, which would read as "no violation".
STRICT = {"strict-builtin-errors": "true"}
# the decision query also asks for OPA's provenance (the revision of the bundle that answered it) and
# its metrics: what OPA's own decision log would say about the query (decisions/opa_event.py)
DECIDE = {**STRICT, "provenance": "true", "metrics": "true"}


@dataclass(frozen=True)
class Answer:
    """OPA's answer to the decision query: ``result`` exactly as OPA sent it, the revision of the
    bundle that answered (None when OPA holds no bundle), OPA's query metrics and its version."""

    result: dict[str, Any]
    revision: str | None
    metrics: dict[str, Any] | None = None
    version: str | None = None
    engine: str = "http"  # which engine answered: "http" (an OPA server) or "inprocess" (engine.inproc)


class EngineError(Exception):
    """OPA could not produce a decision; ``code`` says why (unreachable, policy_error, undefined)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ManagedOpa:
    """An ``opa run --server`` child on a free loopback port, loading the policy directory.

    ``watch``: OPA reloads the directory when files change (``--watch``) and keeps the old
    policies when a change fails to load or compile (see :mod:`policygate.policy.watch`).
    """

    def __init__(
        self,
        binary: str,
        policy_dir: Path,
        start_timeout_s: float = 15.0,
        *,
        watch: bool = False,
        owned_dir: Path | None = None,
        private: bool = False,
        bundle: bool = False,
        pull: Callable[[Path | None], dict[str, Any]] | None = None,
        pull_token: str | None = None,
    ) -> None:
        self.binary = binary
        self.policy_dir = policy_dir
        self.start_timeout_s = start_timeout_s
        self.watch = watch
        self.owned_dir = owned_dir  # a private copy of the policies, removed when OPA stops
        # private: OPA's token authentication with a secret only this process holds, so no other
        # local process can read or change what decides (put data, replace a policy, query)
        self.token: str | None = secrets.token_urlsafe(32) if private else None
        # bundle: the directory holds a .manifest (its revision) and is loaded as a bundle, so every
        # query's provenance names the revision that answered it (policygate.policy.load writes it)
        self.bundle = bundle
        # pull: OPA's configuration (given where the bearer token is, if any) for pulling signed
        # bundles from a bundle service instead of loading policy_dir (policygate.bundles.pull)
        self.pull = pull
        self.pull_token = pull_token
        self._pull_dir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._output: OutputDrain | None = None
        self._authz_dir: Path | None = None
        self.url = ""

    @property
    def pulls(self) -> bool:
        return self.pull is not None

    def start(self) -> str:
        if self.pull is None and not (self.policy_dir / DECISION_PACKAGE).is_dir():
            raise EngineError(
                "policy_error", f"policy directory {self.policy_dir} has no {DECISION_PACKAGE}/"
            )
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        cmd = [
            self.binary,
            "run",
            "--server",
            "--addr",
            f"127.0.0.1:{port}",
            "--log-level",
            "error",
            "--skip-version-check",
            *(["--watch"] if self.watch else []),
            *(["--bundle"] if self.bundle else []),
            *self._auth_args(),
            *(self._pull_args() if self.pull is not None else [str(self.policy_dir)]),
        ]
        try:
            # OPA prints a load error on stdout, its log on stderr: both are read as they come, into
            # the service log (a pipe nobody reads would fill and block OPA)
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self._output = OutputDrain(self.proc)
        except OSError as exc:
            raise EngineError(
                "unreachable", f"cannot start OPA ({self.binary}): {exc}; run `make setup`"
            ) from exc
        atexit.register(self.stop)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self._output.tail()
                status = self.proc.returncode
                self.stop()
                raise EngineError(
                    "policy_error",
                    f"OPA exited while loading {self.policy_dir}: "
                    f"{err.strip()[:4000] or f'exit status {status}, no message'}",
                )
            with contextlib.suppress(requests.RequestException):
                # a pulling OPA is up before its first bundle arrives: /readyz waits for that
                probe = "/health" if self.pull is not None else "/health?bundles=true"
                health = requests.get(f"{self.url}{probe}", headers=self.headers(), timeout=0.5)
                if health.status_code == 200:
                    return self.url
            time.sleep(0.05)
        self.stop()
        raise EngineError("unreachable", f"OPA did not become healthy within {self.start_timeout_s:.0f} s")

    def restart(self) -> str:
        """Start the process again (it ended) on the same directory and secret; the new URL."""
        if self.proc is not None and self.proc.poll() is None:
            return self.url
        self._release()  # the authorization rule is written again, with the same secret
        return self.start()

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _auth_args(self) -> list[str]:
        """``--authentication=token --authorization=basic`` and the one rule that lets the token in.

        The rule lives in a file of its own, outside the policy directory, in a private directory
        (mode 0700) that goes with OPA; its package, ``system.authz``, is not part of the policy
        revision."""
        if not self.token:
            return []
        where = Path(tempfile.mkdtemp(prefix="policygate-opa-authz-"))
        self._authz_dir = where
        authz = where / "authz.rego"
        authz.write_text(
            f'package system.authz\n\ndefault allow := false\n\nallow if input.identity == "{self.token}"\n',
            encoding="utf-8",
        )
        authz.chmod(0o600)
        if self.bundle:  # every path is a bundle then: the rule is one of its own, without a revision
            (where / ".manifest").write_text(json.dumps({"roots": ["system/authz"]}), encoding="utf-8")
            return ["--authentication=token", "--authorization=basic", str(where)]
        return ["--authentication=token", "--authorization=basic", str(authz)]

    def _pull_args(self) -> list[str]:
        """``--config-file`` with the pull configuration, in a private directory (mode 0700) with the
        bearer token (0600) beside it; both go with the process."""
        assert self.pull is not None
        where = Path(tempfile.mkdtemp(prefix="policygate-opa-pull-"))
        self._pull_dir = where
        token_path = None
        if self.pull_token:
            token_path = where / "token"
            token_path.write_text(self.pull_token, encoding="utf-8")
            token_path.chmod(0o600)
        config = where / "config.json"
        config.write_text(json.dumps(self.pull(token_path)), encoding="utf-8")
        config.chmod(0o600)
        return ["--config-file", str(config)]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._release()
        if self.owned_dir is not None:
            shutil.rmtree(self.owned_dir, ignore_errors=True)

    def _release(self) -> None:
        """What one process had: its output reader and its authorization rule."""
        self.proc = None
        if self._output is not None:
            self._output.join()
            self._output = None
        if self._authz_dir is not None:
            shutil.rmtree(self._authz_dir, ignore_errors=True)
            self._authz_dir = None
        if self._pull_dir is not None:
            shutil.rmtree(self._pull_dir, ignore_errors=True)
            self._pull_dir = None


def _level_of(line: str) -> int:
    """OPA logs JSON with a ``level``: its errors are errors; the rest (e.g. "running as root", or a
    load error that policygate reports itself) is news for the service log, not for a CLI user's
    terminal."""
    if not line.startswith("{"):
        return logging.INFO
    with contextlib.suppress(ValueError):
        if json.loads(line).get("level") == "error":
            return logging.ERROR
    return logging.INFO


class OutputDrain:
    """Reads a child's output line by line while it runs: each line goes to the service log
    (logger ``policygate.opa``), the last few kilobytes are kept for an error message on exit."""

    TAIL_BYTES = 8000
    LINE_BYTES = 2000

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._tail: collections.deque[str] = collections.deque()
        self._size = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._read, args=(proc.stdout,), name="opa-output", daemon=True
        )
        self._thread.start()

    def _read(self, stream: IO[bytes] | None) -> None:
        if stream is None:
            return
        with stream:
            for raw in stream:
                line = raw[: self.LINE_BYTES].decode(errors="replace").rstrip()
                if not line:
                    continue
                opa_log.log(_level_of(line), "%s", line)
                with self._lock:
                    self._tail.append(line)
                    self._size += len(line) + 1
                    while self._size > self.TAIL_BYTES and len(self._tail) > 1:
                        self._size -= len(self._tail.popleft()) + 1

    def tail(self) -> str:
        """What the child wrote last (after it exited: all it wrote, up to TAIL_BYTES)."""
        self._thread.join(timeout=2)
        with self._lock:
            return "\n".join(self._tail)

    def join(self) -> None:
        self._thread.join(timeout=2)


class OpaEngine:
    """Queries ``data.policygate.decision`` over a keep-alive connection pool."""

    kind = "http"  # which engine decides (/readyz, each decision record); engine.inproc: "inprocess"

    def __init__(
        self,
        url: str,
        timeout_s: float = 5.0,
        managed: ManagedOpa | None = None,
        *,
        describe: Callable[[list[dict[str, Any]]], str] | None = None,
        token: str | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EngineError("unreachable", f"invalid OPA URL {url!r}: expected http(s)://host:port")
        self.url = url.rstrip("/")
        self.managed = managed
        # names the rule an evaluation error happened in (engine.catalogue.RuleLocator.describe)
        self.describe = describe
        self.rule_ids: list[str] = []  # the rules the loaded policy has (set by policy.load)
        # a file or module name as OPA knows it -> as the author edits it (policy.load serves a copy)
        self.local: Callable[[str], str] = lambda name: name
        # the bearer token OPA wants: the managed OPA's own secret, or POLICYGATE_OPA_TOKEN
        self.token = token or (managed.token if managed else None)
        self.timeout_s = timeout_s
        self.client = self._client(self.url)
        self._revision: tuple[str, float] | None = None  # (revision, time.monotonic() when known)
        self._lock = threading.Lock()
        # evaluate_async: keep-alive connections on the running event loop (made on first use)
        self._async: tuple[asyncio.AbstractEventLoop, str, Http1Pool] | None = None
        self._instance: tuple[str, str | None] | None = None  # (url, the id that OPA's labels give)

    @classmethod
    def start(
        cls,
        opa_url: str | None,
        binary: str,
        policy_dir: Path,
        timeout_s: float = 5.0,
        *,
        watch: bool = False,
        examples_dir: Path | None = None,
        token: str | None = None,
        pull: Callable[[Path | None], dict[str, Any]] | None = None,
        pull_token: str | None = None,
        engine: str | None = None,
    ) -> OpaEngine:
        """Use the OPA at ``opa_url``, or start a managed one on ``policy_dir`` once it passed every
        load check (:mod:`policygate.policy.load`; refused: ``EngineError`` naming the problems).
        ``engine``: ``inprocess`` compiles the policy into this process instead of starting an OPA
        server (:mod:`policygate.engine.inproc`; None: ``POLICYGATE_ENGINE``, see ``choose``).
        ``watch`` is kept for callers; reloads are :class:`policygate.policy.watch.PolicyWatcher`'s."""
        del watch
        if opa_url:
            return cls(opa_url, timeout_s, token=token)
        if pull is not None:  # serve's own OPA, pulling signed bundles (checked when they were built)
            managed = ManagedOpa(binary, policy_dir, private=True, pull=pull, pull_token=pull_token)
            return cls(managed.start(), timeout_s, managed)
        from policygate.policy.load import start_checked  # the checks need the engine

        return start_checked(binary, policy_dir, examples_dir, timeout_s, engine=engine)

    @property
    def policy_files(self) -> Path | None:
        """The checked copy of the policy files that decides (None: an OPA policygate did not load)."""
        managed = self.managed
        return managed.policy_dir if managed is not None and not managed.pulls else None

    def _client(self, url: str) -> OpaClient:
        """The synchronous client for ``url``, sending the bearer token when there is one."""
        parts = urlsplit(url)
        client = OpaClient(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (443 if parts.scheme == "https" else 80),
            ssl=parts.scheme == "https",
            retries=0,
            timeout=self.timeout_s,
        )
        if self.token:
            client._session.headers["Authorization"] = f"Bearer {self.token}"
        return client

    def reconnect(self, url: str) -> None:
        """Talk to the same OPA at a new address (the supervisor restarted it)."""
        client = self._client(url)
        with self._lock:
            old, self.client, self.url = self.client, client, url.rstrip("/")
        old.close_connection()

    def adopt(self, other: OpaEngine) -> Callable[[], None]:
        """Serve from ``other``'s OPA from now on (a checked reload). Returns what retires the OPA
        this engine used before, for the caller to run once queries in flight are done."""
        with self._lock:
            old_client, old_managed = self.client, self.managed
            self.url, self.client, self.managed = other.url, other.client, other.managed
            self.token = other.token
            self.describe = other.describe
            self.rule_ids = other.rule_ids
            self.local = other.local
            self._revision = other._revision
            other.managed = None

        def retire() -> None:
            old_client.close_connection()
            if old_managed is not None:
                old_managed.stop()

        return retire

    def close(self) -> None:
        self.client.close_connection()
        if self._async is not None:
            self._async[2].close()
            self._async = None
        if self.managed:
            self.managed.stop()

    def __enter__(self) -> OpaEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def healthy(self) -> bool:
        return bool(self.client.check_health())

    def evaluate(self, evidence: dict[str, Any]) -> dict[str, Any]:
        return _decision_of(self._query(evidence))

    def evaluate_revised(self, evidence: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """:meth:`evaluate`, with the revision of the bundle that answered this very query (OPA's
        provenance); None when OPA holds no bundle (policies loaded from a directory)."""
        answer = self.answer(evidence)
        return answer.result, answer.revision

    def answer(self, evidence: dict[str, Any]) -> Answer:
        """:meth:`evaluate_revised` with OPA's metrics and version: all a decision log event needs."""
        return _answer_of(self._query(evidence, DECIDE))

    async def evaluate_async(self, evidence: dict[str, Any], pool: Http1Pool | None = None) -> dict[str, Any]:
        return (await self.evaluate_revised_async(evidence, pool))[0]

    async def evaluate_revised_async(
        self, evidence: dict[str, Any], pool: Http1Pool | None = None
    ) -> tuple[dict[str, Any], str | None]:
        """:meth:`evaluate_revised` for the event loop: the same query and the same failures, over
        kept-alive connections that hold no thread (:mod:`policygate.engine.http1`); ``pool``: a
        caller's own (:meth:`new_pool`), for a loop other than the service's."""
        answer = await self.answer_async(evidence, pool)
        return answer.result, answer.revision

    async def answer_async(self, evidence: dict[str, Any], pool: Http1Pool | None = None) -> Answer:
        """:meth:`answer` for the event loop."""
        body = _wire({"input": evidence})
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
        return _answer_of(result)

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

    def cached_revision(self) -> str | None:
        """The policy revision if it is cached and fresh, without asking OPA (None otherwise)."""
        known = self._revision  # one read: a consistent pair, no lock needed
        if known is None or time.monotonic() - known[1] > REVISION_TTL_S:
            return None
        return known[0]

    def _timed_out(self) -> EngineError:
        """OPA took the connection but gave no answer in time: the policy is slow, OPA is there."""
        return EngineError(
            "policy_timeout",
            f"policy evaluation exceeded {self.timeout_s:g} s (POLICYGATE_OPA_TIMEOUT_S): a rule loops over "
            "too much (e.g. a comprehension over a large range), or OPA is overloaded",
        )

    def _query(self, evidence: dict[str, Any], params: dict[str, str] = STRICT) -> dict[str, Any]:
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

    def _refused(self, status: int, body: bytes) -> EngineError:
        """The error for a query OPA answered with an error: an evaluation error names its rule."""
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        errors = parsed.get("errors") if isinstance(parsed, dict) else None
        if isinstance(errors, list) and errors and all(isinstance(e, dict) for e in errors):
            from policygate.engine.catalogue import RuleLocator  # it needs EngineError from here

            describe = self.describe or RuleLocator([]).describe
            return EngineError("policy_error", f"policy error: {describe(errors)}")
        return EngineError("policy_error", f"OPA refused the query: {_opa_error_of(status, body)}")

    def put_data(self, path: str, value: Any) -> None:
        """Replace the data document at ``path`` (``PUT /v1/data/{path}``), e.g. the active waivers."""
        try:
            resp = self.client._session.put(
                f"{self.url}/v1/data/{path.strip('/')}", json=value, timeout=self.client.timeout
            )
        except requests.RequestException as exc:
            raise EngineError("unreachable", f"OPA unreachable at {self.url}: {type(exc).__name__}") from exc
        if resp.status_code >= 300:
            raise EngineError("policy_error", f"OPA refused to write data/{path}: {_opa_error(resp)}")

    def instance_id(self) -> str | None:
        """The id OPA labels its decision-log events with (``GET /v1/config``: ``labels.id``, one per
        OPA process), read once per address; None when OPA does not say."""
        url, known = self.url, self._instance
        if known is not None and known[0] == url:
            return known[1]
        try:
            labels = (self._get("/v1/config").get("result") or {}).get("labels")
        except EngineError:  # e.g. an OPA whose authorization keeps its configuration: asked once
            labels = None
        found = labels.get("id") if isinstance(labels, dict) else None
        self._instance = (url, found if isinstance(found, str) else None)
        return self._instance[1]

    def instance_known(self) -> bool:
        """Whether :meth:`instance_id` was asked for the current address."""
        known = self._instance
        return known is not None and known[0] == self.url

    def cached_instance_id(self) -> str | None:
        """:meth:`instance_id` if it is known for the current address, without asking OPA."""
        known = self._instance
        return known[1] if known is not None and known[0] == self.url else None

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
        try:
            resp = self.client._session.post(f"{self.url}/v1/query", json=body, timeout=self.client.timeout)
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
        try:
            resp = self.client._session.get(f"{self.url}{path}", timeout=self.client.timeout)
        except requests.RequestException as exc:
            raise EngineError("unreachable", f"OPA unreachable at {self.url}: {type(exc).__name__}") from exc
        if resp.status_code >= 300:
            raise EngineError("policy_error", f"OPA refused GET {path}: {_opa_error(resp)}")
        try:
            body = resp.json()
        except ValueError as exc:
            raise EngineError("policy_error", f"OPA answered with invalid JSON: {exc}") from exc
        return body if isinstance(body, dict) else {}

    @property
    def policy_revision(self) -> str:
        """Digest of the policies and parameters OPA actually holds (refreshed every 30 s)."""
        with self._lock:
            return self.cached_revision() or self._refresh_locked()

    def refresh_revision(self) -> str:
        """Re-read the revision from OPA now and cache it: after a reload, not 30 s later."""
        with self._lock:
            return self._refresh_locked()

    def note_revision(self, revision: str) -> None:
        """Cache ``revision`` as what OPA holds, known without asking (the hot reload saw it load)."""
        with self._lock:
            self._revision = (revision, time.monotonic())

    def _refresh_locked(self) -> str:
        revision = self._fetch_revision()
        self._revision = (revision, time.monotonic())
        return revision

    def _fetch_revision(self) -> str:
        """The revision from what OPA holds (``GET /v1/policies`` and the parameters)."""
        policies = self._get("/v1/policies").get("result")
        if not isinstance(policies, list):
            raise EngineError("policy_error", "OPA answered GET /v1/policies with something unexpected")
        # a bundle policygate built names its revision (which covers all its data files) itself
        answer = self._get(f"/v1/data/{PARAMS_PATH}?provenance=true")
        bundled = bundle_revision(answer)
        if bundled is not None:
            return bundled
        modules = [(str(p.get("id", "")), str(p.get("raw", ""))) for p in policies if isinstance(p, dict)]
        return revision_of(modules, answer.get("result"))


def _wire(query: dict[str, Any]) -> bytes:
    """The query as JSON for the wire (not hashed, so orjson's number spelling is fine)."""
    try:
        return orjson.dumps(query)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits: the standard encoder has no limit
        return json.dumps(query, ensure_ascii=False).encode()


def bundle_revision(answer: dict[str, Any]) -> str | None:
    """The revision of the bundle that answered, from a query's provenance: the bundle named
    ``policygate``, else the only one with a revision; None without (or with several, none so named)."""
    provenance = answer.get("provenance")
    bundles = provenance.get("bundles") if isinstance(provenance, dict) else None
    if not isinstance(bundles, dict) or not bundles:
        return None
    revised = {
        name: b["revision"]
        for name, b in bundles.items()
        if isinstance(b, dict) and isinstance(b.get("revision"), str) and b["revision"]
    }  # (the managed OPA's authorization rule is a bundle without a revision)
    if BUNDLE in revised:
        return str(revised[BUNDLE])
    return str(next(iter(revised.values()))) if len(revised) == 1 else None


def _answer_of(answer: dict[str, Any]) -> Answer:
    provenance = answer.get("provenance")
    version = provenance.get("version") if isinstance(provenance, dict) else None
    metrics = answer.get("metrics")
    return Answer(
        _decision_of(answer),
        bundle_revision(answer),
        metrics if isinstance(metrics, dict) else None,
        version if isinstance(version, str) else None,
    )


def _decision_of(result: dict[str, Any]) -> dict[str, Any]:
    """``data.policygate.decision`` from OPA's answer; undefined or not an object is an error."""
    if "result" not in result:
        raise EngineError(
            "undefined",
            f"data.{DECISION_PACKAGE}.{DECISION_RULE} is undefined: the policy gave no decision",
        )
    decision = result["result"]
    if not isinstance(decision, dict):
        raise EngineError("policy_error", f"data.{DECISION_PACKAGE}.{DECISION_RULE} is not an object")
    return decision


def _opa_error_of(status: int, body: bytes) -> str:
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
    return _opa_error_of(response.status_code, response.content)
