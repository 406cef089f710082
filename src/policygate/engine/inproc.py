"""OPA in process: the pinned OPA linked into policygate (``go/inproc``, built by ``make setup`` into
``.bin/libpolicygate_opa.so``), behind the same interface as :class:`~policygate.engine.opa.OpaEngine`.

Bound with :mod:`ctypes` rather than cffi: ctypes is in the standard library (cffi would be a new
dependency, and the lock files are fixed), its ``CDLL`` calls release the GIL for the whole call (so
uvicorn's threads evaluate in parallel), and the interface is five functions taking and returning
C strings of JSON, which needs no C declarations compiled at install time.

Every answer is JSON bytes shaped like the OPA server's: a success is the body of ``POST
/v1/data/...``; a failure is ``{"status": N, "body": <OPA's error body>}`` and goes through the same
error handling as an HTTP answer, so a decision is the same on both engines, errors included. A Go
panic comes back as such a failure (never a crashed process); an evaluation that runs past the
timeout is stopped by OPA's own cancellation.

There is no OPA port and no token file: nothing outside this process can query OPA or change
its data.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import orjson

from policygate.engine.client import wire
from policygate.engine.errors import DECISION_PACKAGE, DECISION_RULE, PARAMS_PATH, STRICT, EngineError
from policygate.engine.opa import OpaEngine
from policygate.engine.result import decision_of
from policygate.engine.revision import revision_of

LIBRARY_NAME = "libpolicygate_opa.so"
_CHECKOUT = Path(__file__).resolve().parents[3]
Kind = Literal["inprocess", "http"]
ENGINES = ("auto", "inprocess", "http")
AUTO: Kind = "inprocess"  # what ``auto`` picks when the library is present
BATCH = 256  # documents per library call of evaluate_many


def library_path() -> Path | None:
    """The built library: ``POLICYGATE_OPA_LIBRARY``, else ``.bin/`` of the working directory or of
    this checkout; None when there is none (a machine without Go: the HTTP engine)."""
    configured = os.environ.get("POLICYGATE_OPA_LIBRARY")
    if configured:
        return Path(configured) if Path(configured).is_file() else None
    for candidate in (Path.cwd() / ".bin" / LIBRARY_NAME, _CHECKOUT / ".bin" / LIBRARY_NAME):
        if candidate.is_file():
            return candidate
    return None


def choose(requested: str | None = None, *, opa_url: str | None = None, pulls: bool = False) -> Kind:
    """Which engine decides: ``POLICYGATE_ENGINE`` (``inprocess``, ``http`` or ``auto``). ``auto``:
    in process when the library is present and policygate loads the policies itself; an OPA at
    ``POLICYGATE_OPA_URL`` or one pulling signed bundles is always spoken to over HTTP."""
    wanted = (requested or os.environ.get("POLICYGATE_ENGINE") or "auto").strip().lower()
    if opa_url or pulls:
        return "http"
    if wanted == "http":
        return "http"
    if wanted == "inprocess":
        return "inprocess"
    return AUTO if library_path() is not None else "http"


GOGC_DEFAULT = 400


def gc_percent(gogc: str | None) -> int:
    """Go's collector target for the library: ``GOGC`` when set (``off``: never collect), else 400.

    An evaluation allocates much against the small live heap of a compiled policy: at Go's default
    100 % the collector was a fifth of each evaluation's CPU (docs/benchmarks.md, "OPA in
    process"); 400 costs about 30 MB more resident memory."""
    value = (gogc or "").strip().lower()
    if value == "off":
        return -1
    return int(value) if value.isdigit() else GOGC_DEFAULT


class Library:
    """The loaded shared library; one per process (the Go runtime starts once)."""

    _loaded: Library | None = None
    _lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        lib = ctypes.CDLL(str(path))  # CDLL (not PyDLL): every call releases the GIL
        vp, cp, ll, ci = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_longlong, ctypes.c_int
        signatures: dict[str, list[Any]] = {
            "pg_compile": [cp],
            "pg_eval": [ll, cp, ci, ci],
            "pg_eval_batch": [ll, cp, ci, ci, ci],
            "pg_query": [ll, cp, cp, ci, ci],
            "pg_read_data": [ll, cp, ci],
            "pg_write_data": [ll, cp, cp, ci],
            "pg_policies": [ll],
            "pg_info": [ll],
            "pg_parse": [cp],
            "pg_panic": [],  # only in a library built with test hooks (ensure-opa-inproc.sh --test-hooks)
        }
        for name, args in signatures.items():
            fn = getattr(lib, name, None)
            if fn is None:
                continue
            fn.argtypes, fn.restype = args, vp  # a pointer we free, not a copied bytes object
        lib.pg_free.argtypes, lib.pg_free.restype = [vp], None
        lib.pg_release.argtypes, lib.pg_release.restype = [ll], None
        percent = getattr(lib, "pg_gc_percent", None)
        if percent is not None:
            percent.argtypes, percent.restype = [ci], ci
            percent(gc_percent(os.environ.get("GOGC")))
        self._lib = lib
        self.path = path

    @classmethod
    def load(cls) -> Library:
        """The library, loaded once; ``EngineError`` (``unreachable``) when it is not built."""
        with cls._lock:
            if cls._loaded is None:
                path = library_path()
                if path is None:
                    raise EngineError(
                        "unreachable",
                        f"the in-process OPA ({LIBRARY_NAME}) is not built: run `make setup` (needs Go), "
                        "or set POLICYGATE_ENGINE=http",
                    )
                try:
                    cls._loaded = cls(path)
                except OSError as exc:
                    raise EngineError("unreachable", f"cannot load {path}: {exc}") from exc
            return cls._loaded

    def call(self, name: str, *args: Any) -> dict[str, Any]:
        """Call ``pg_NAME``, free its answer, return it parsed."""
        fn = getattr(self._lib, name, None)
        if fn is None:
            raise EngineError("policy_error", f"the in-process OPA at {self.path} has no {name}")
        ptr = fn(*args)
        if not ptr:
            raise EngineError("policy_error", f"the in-process OPA returned nothing from {name}")
        try:
            raw = ctypes.string_at(ptr)
        finally:
            self._lib.pg_free(ptr)
        answer = orjson.loads(raw)
        if not isinstance(answer, dict):
            raise EngineError("policy_error", f"the in-process OPA answered {name} with something unexpected")
        return answer

    def release(self, handle: int) -> None:
        self._lib.pg_release(handle)


def _failure(answer: dict[str, Any]) -> tuple[int, bytes] | None:
    """(status, OPA's error body) when the answer is a failure."""
    status = answer.get("status")
    if isinstance(status, int) and "body" in answer:
        return status, orjson.dumps(answer["body"])
    return None


class Policy:
    """One compiled policy in the library (its handle), released when dropped."""

    def __init__(self, lib: Library, handle: int, revision: str | None, version: str | None) -> None:
        self.lib, self.handle, self.revision, self.version = lib, handle, revision, version

    def release(self) -> None:
        # the library keeps a policy alive while an evaluation on it runs: releasing is always safe
        self.lib.release(self.handle)


_compiles = threading.local()


def on_compile(notify: Callable[[], None] | None) -> None:
    """On this thread, call ``notify()`` as each :func:`compile_policy` hands over to Go (None: stop).
    :class:`policygate.engine.ahead.EngineAhead` lets its caller go on from that moment."""
    _compiles.notify = notify


def compile_policy(
    path: Path, *, bundle: bool, capabilities: Path | None = None, strict: bool = True
) -> Policy:
    """Compile ``path`` (a directory, loaded as ``opa run [--bundle]`` loads it) in process."""
    lib = Library.load()
    options = {
        "path": str(path),
        "bundle": bundle,
        "strict": strict,
        "capabilities": str(capabilities) if capabilities else "",
        "query": f"data.{DECISION_PACKAGE}.{DECISION_RULE}",
    }
    notify = getattr(_compiles, "notify", None)
    if notify is not None:
        notify()  # Go compiles from here on, without the GIL (engine.ahead)
    answer = lib.call("pg_compile", json.dumps(options).encode())
    failed = _failure(answer)
    if failed is not None:
        body = orjson.loads(failed[1])
        details = "; ".join(
            f"{e.get('location', {}).get('file', '')}:{e.get('location', {}).get('row', '')}: "
            f"{e.get('code', '')}: {e.get('message', '')}"
            for e in body.get("errors") or []
            if isinstance(e, dict)
        )
        raise EngineError(
            "policy_error", f"the in-process OPA cannot load {path}: {details or body.get('message')}"
        )
    revision = answer.get("revision")
    return Policy(lib, int(answer["handle"]), revision or None, answer.get("version"))


def parse_files(files: list[Path]) -> tuple[dict[str, dict[str, Any]], list[Path]]:
    """``opa parse --format json --json-include locations,-comments`` of each file, in process:
    ({file: AST}, the files that did not parse, for the binary to say why in its own words)."""
    answer = Library.load().call("pg_parse", json.dumps([str(f) for f in files]).encode())
    if _failure(answer) is not None:
        return {}, list(files)
    modules = answer.get("modules")
    parsed = {str(k): v for k, v in (modules or {}).items() if isinstance(v, dict)}
    return parsed, [f for f in files if str(f) not in parsed]


class InprocessEngine(OpaEngine):
    """:class:`OpaEngine` with OPA linked in: the same methods, no server, no HTTP."""

    kind: Kind = "inprocess"
    TIMEOUT_HINT = "; the in-process OPA stopped it"

    def __init__(
        self,
        policy: Policy,
        timeout_s: float = 5.0,
        *,
        describe: Callable[[list[dict[str, Any]]], str] | None = None,
        files: Path | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        # (not OpaEngine.__init__: there is no URL, client or connection pool)
        self.url = "inprocess://opa"
        self.managed = None
        self.describe = describe
        self.token = None
        self.timeout_s = timeout_s
        self._policy = policy
        self._files = files  # the checked copy it was compiled from, removed by on_close
        self._on_close = on_close
        self._init_state()

    @property
    def policy_files(self) -> Path | None:
        return self._files

    @property
    def library(self) -> Library:
        return self._policy.lib

    def _ms(self) -> int:
        return max(1, int(self.timeout_s * 1000))

    def _checked(self, answer: dict[str, Any]) -> dict[str, Any]:
        failed = _failure(answer)
        if failed is None:
            return answer
        status, body = failed
        if status == 504:
            raise self._timed_out()
        raise self._refused(status, body)

    def _query(self, evidence: dict[str, Any], params: dict[str, str] = STRICT) -> dict[str, Any]:
        del params  # always strict builtin errors, provenance and metrics
        policy = self._policy  # one read: the whole decision is made under one revision
        body = wire(evidence)
        return self._checked(policy.lib.call("pg_eval", policy.handle, body, len(body), self._ms()))

    def evaluate_many(
        self, documents: Sequence[dict[str, Any]], *, workers: int = 4
    ) -> list[dict[str, Any] | EngineError]:
        """:meth:`OpaEngine.evaluate_many` with one library call per :data:`BATCH` documents: OPA
        evaluates them on its own goroutines (``workers`` at most, else one per CPU), no HTTP, no
        Python thread per document."""
        policy = self._policy  # one read: the whole batch is decided under one revision
        spread = max(1, min(workers, os.cpu_count() or 1))
        decided: list[dict[str, Any] | EngineError] = []
        for start in range(0, len(documents), BATCH):
            body = b"[" + b",".join(wire(d) for d in documents[start : start + BATCH]) + b"]"
            answer = policy.lib.call("pg_eval_batch", policy.handle, body, len(body), self._ms(), spread)
            answers = self._checked(answer).get("answers")
            if not isinstance(answers, list):
                raise EngineError(
                    "policy_error", "the in-process OPA answered a batch with something unexpected"
                )
            for one in answers:
                try:
                    decided.append(decision_of(self._checked(one)))
                except EngineError as exc:
                    decided.append(exc)
        return decided

    async def _query_async(self, evidence: dict[str, Any], pool: Any = None) -> dict[str, Any]:
        """:meth:`_query` on a worker thread: the event loop keeps serving while OPA evaluates."""
        del pool
        return await asyncio.to_thread(self._query, evidence)

    def new_pool(self) -> Any:
        """None: the in-process OPA has no connections (a batch path such as the audit passes it
        back to :meth:`_query_async`, which ignores it)."""
        return None

    def healthy(self) -> bool:
        return True

    def put_data(self, path: str, value: Any) -> None:
        policy = self._policy
        body = wire(value)
        answer = policy.lib.call("pg_write_data", policy.handle, path.strip("/").encode(), body, len(body))
        failed = _failure(answer)
        if failed is not None:
            raise EngineError(
                "policy_error", f"OPA refused to write data/{path}: {failed[1].decode()[:2000]}"
            )

    def get_data(self, path: str) -> Any:
        policy = self._policy
        answer = policy.lib.call("pg_read_data", policy.handle, path.strip("/").encode(), self._ms())
        return self._checked(answer).get("result")

    def query(self, query: str, input_: Any = None) -> list[dict[str, Any]]:
        policy = self._policy
        body = wire(input_) if input_ is not None else b""
        size = len(body) if input_ is not None else -1
        answer = policy.lib.call("pg_query", policy.handle, query.encode(), body, size, self._ms())
        failed = _failure(answer)
        if failed is not None:
            raise EngineError("policy_error", f"OPA refused the query: {failed[1].decode()[:2000]}")
        return [r for r in answer.get("result") or [] if isinstance(r, dict)]

    def policies(self) -> list[dict[str, Any]]:
        policy = self._policy
        return [
            p
            for p in policy.lib.call("pg_policies", policy.handle).get("result") or []
            if isinstance(p, dict)
        ]

    def instance_id(self) -> str | None:
        return None

    def cached_instance_id(self) -> str | None:
        return None

    def instance_known(self) -> bool:
        return True

    def bundle_status(self) -> dict[str, dict[str, Any]] | None:
        return None

    def _fetch_revision(self) -> str:
        policy = self._policy
        if policy.revision:
            return policy.revision
        modules = [(str(p.get("id", "")), str(p.get("raw", ""))) for p in self.policies()]
        return revision_of(modules, self.get_data(PARAMS_PATH))

    def reconnect(self, url: str) -> None:
        del url  # nothing to reconnect to

    def adopt(self, other: OpaEngine) -> Callable[[], None]:
        """Serve ``other``'s compiled policy from now on (a checked reload): one assignment, so each
        decision is made entirely under the old or entirely under the new policy."""
        if not isinstance(other, InprocessEngine):
            raise EngineError("policy_error", "an in-process engine can only adopt another in-process policy")
        with self._lock:
            old, old_close = self._policy, self._on_close
            self._take_policy(other)
            self._on_close = other._on_close
            self._files = other._files
            self._policy = other._policy
            other._on_close = None

        def retire() -> None:
            old.release()
            if old_close is not None:
                old_close()

        return retire

    def close(self) -> None:
        self._policy.release()
        if self._on_close is not None:
            self._on_close()
            self._on_close = None
