"""Hot reload (``policygate serve --watch``): follow the managed OPA's reloads of the policy directory.

The managed OPA runs ``opa run --server --watch``: on a file change it reloads every
policy and data file in one transaction and, when they fail to load or compile (a
Rego or JSON syntax error, a type error, a data/rule conflict, a broken
``*_test.rego``), keeps serving what it had (checked on OPA v1.22.3). But it tells
nobody, its reload replaces the whole data tree (the waivers policygate pushed
through the API with it), and the revision decisions record is cached for 30 s.
So, while OPA watches:

- every ``reload_check_s`` this watcher looks for a sentinel it keeps in OPA's data;
  gone means OPA just reloaded: it puts it back, caches the revision the files on disk
  give (decisions record it from then on) and pushes the waivers again;
- every ``interval_s`` it polls the files (a digest) and on a change loads them the
  way ``opa run`` does (``opa eval -d DIR``; JSON data files are also parsed here, for
  a line and column). Errors mean OPA refused the change: they are kept for
  ``/readyz`` (503, naming file and line) and logged at ERROR, and decisions go on
  recording the revision OPA still holds. Otherwise it waits, bounded, until OPA
  reports the revision the files give, then clears the error and runs
  ``opa check --strict``, whose lints OPA itself does not enforce: warnings, not a
  refusal.

``opa check`` alone is not enough to predict OPA: it does not read data files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import subprocess
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from policygate.engine.opa import PARAMS_PATH, EngineError, OpaEngine
from policygate.evidence import digest
from policygate.policy.authoring import AuthoringError, CheckError, run_check
from policygate.timeutil import now_iso

log = logging.getLogger(__name__)

INTERVAL_S = 0.25
LOAD_TIMEOUT_S = 10.0
RELOAD_CHECK_S = 0.05
# In OPA's data while the files it loaded are in force: a file reload replaces the data tree, so its
# absence is the sign that OPA reloaded (a refused change leaves it in place).
SENTINEL_PATH = "policygate_watch"
_SETTLE_S = 0.05
_SETTLE_TRIES = 20
# What ``opa run DIR`` loads: Rego modules and JSON/YAML data files.
_LOADED = (".rego", ".json", ".yaml", ".yml")

Files = dict[str, bytes]


@dataclass(frozen=True)
class PolicyState:
    """What the watcher last established; ``error`` set means OPA refused the files on disk."""

    policy_dir: str
    revision: str | None = None
    errors: list[CheckError] = field(default_factory=list)
    warnings: list[CheckError] = field(default_factory=list)
    since: str | None = None
    reloaded_at: str | None = None

    @property
    def ready(self) -> bool:
        """OPA holds the files on disk, as far as the watcher has confirmed (not yet, at start-up)."""
        return self.revision is not None and not self.errors

    @property
    def error(self) -> str | None:
        return "; ".join(str(e) for e in self.errors) if self.errors else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy_dir": self.policy_dir,
            "ready": self.ready,
            "revision": self.revision,
            "error": self.error,
            "errors": [asdict(e) for e in self.errors],
            "warnings": [asdict(e) for e in self.warnings],
            "since": self.since,
            "reloaded_at": self.reloaded_at,
        }


def snapshot(policy_dir: Path) -> Files:
    """Every file OPA loads from the directory, by path, with its bytes."""
    files: Files = {}
    for root, dirs, names in os.walk(policy_dir):
        dirs.sort()
        for name in sorted(names):
            if name.endswith(_LOADED):
                path = os.path.join(root, name)
                try:
                    files[path] = Path(path).read_bytes()
                except OSError:  # removed between listing and reading: the next poll sees it gone
                    continue
    return files


def files_digest(files: Files) -> str:
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
    return h.hexdigest()


def expected_revision(files: Files, params: Any) -> str:
    """The revision OPA reports once it holds these files: as :meth:`OpaEngine._fetch_revision` computes it
    (raw text of every non-test module, and ``data.policygate_params``)."""
    raws = sorted(
        content.decode("utf-8", errors="replace")
        for path, content in files.items()
        if path.endswith(".rego") and not path.endswith("_test.rego")
    )
    return digest({"policies": raws, "params": params})


def params_of(files: Files, policy_dir: Path) -> tuple[bool, Any]:
    """``data.policygate_params`` as OPA builds it from these files: each JSON data file's object at its
    directory's path. (False, None) when that takes more than this (YAML, a file that does not parse)."""
    merged: dict[str, Any] = {}
    for path, content in files.items():
        if path.endswith((".yaml", ".yml")):
            return False, None
        if not path.endswith(".json"):
            continue
        try:
            doc = json.loads(content)
        except ValueError:
            return False, None
        if not isinstance(doc, dict):
            return False, None
        node = merged
        for part in Path(os.path.relpath(os.path.dirname(path), policy_dir)).parts:
            if part != ".":
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    return False, None
        for key, value in doc.items():
            if key in node:
                return False, None  # OPA merges or refuses overlaps; leave that to it
            node[key] = value
    return True, merged.get(PARAMS_PATH)


def json_errors(files: Files) -> list[CheckError]:
    """JSON data files that do not parse, with line and column (OPA names only the file)."""
    errors = []
    for path, content in sorted(files.items()):
        if not path.endswith(".json"):
            continue
        try:
            json.loads(content)
        except ValueError as exc:
            row, col = (exc.lineno, exc.colno) if isinstance(exc, json.JSONDecodeError) else (0, 0)
            msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            errors.append(CheckError(path, row, col, "data_parse_error", msg))
    return errors


def load(binary: str, policy_dir: Path, timeout_s: float = 60.0) -> tuple[list[CheckError], Any]:
    """Load and compile the directory as ``opa run`` does: (errors, ``data.policygate_params``)."""
    try:
        proc = subprocess.run(
            [binary, "eval", "--format", "json", "--data", str(policy_dir), f"data.{PARAMS_PATH}"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [
            CheckError(str(policy_dir), 0, 0, "opa_eval_failed", f"cannot run {binary} eval: {exc}")
        ], None
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        text = (proc.stderr.strip() or proc.stdout.strip() or f"opa eval exited {proc.returncode}")[:4000]
        return [CheckError(str(policy_dir), 0, 0, "opa_eval_failed", text)], None
    errors = []
    for err in out.get("errors") or []:
        loc = err.get("location") or {}
        errors.append(
            CheckError(
                file=str(loc.get("file", "")),
                row=int(loc.get("row", 0)),
                col=int(loc.get("col", 0)),
                code=str(err.get("code", "load_error")),
                message=str(err.get("message", "")),
            )
        )
    if errors or proc.returncode != 0:
        return errors or [CheckError(str(policy_dir), 0, 0, "opa_eval_failed", proc.stderr[:4000])], None
    results = out.get("result") or []
    expressions = (results[0].get("expressions") or []) if results else []
    return [], (expressions[0].get("value") if expressions else None)


class PolicyWatcher:
    """Keeps :attr:`state` and the engine's cached revision true to what the watched OPA holds.

    Two daemon threads: one polls the files (``interval_s``) and validates each change; the
    other notices OPA's own reloads within ``reload_check_s``: it keeps a small sentinel
    document in OPA's data, which a file reload wipes with the rest, and on its loss puts it
    back, caches the new revision and calls ``restore`` (push the waivers again).
    ``on_reload`` runs after a change OPA took (e.g. re-read the rule ids).
    """

    def __init__(
        self,
        engine: OpaEngine,
        binary: str,
        policy_dir: Path,
        *,
        interval_s: float = INTERVAL_S,
        reload_check_s: float = RELOAD_CHECK_S,
        load_timeout_s: float = LOAD_TIMEOUT_S,
        on_reload: Callable[[], None] | None = None,
        restore: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.binary = binary
        self.policy_dir = policy_dir
        self.interval_s = interval_s
        self.reload_check_s = reload_check_s
        self.load_timeout_s = load_timeout_s
        self.on_reload = on_reload
        self.restore = restore
        self.state = PolicyState(str(policy_dir))
        self.reloads = 0  # OPA reloads noticed (sentinel lost), for tests and logs
        self._digest: str | None = None
        self._reloaded_digest: str | None = None  # the files on disk when OPA last reloaded
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> PolicyWatcher:
        _WATCHERS[self.engine] = self
        with contextlib.suppress(EngineError):  # unreachable now: check_reload puts it later
            self.engine.put_data(SENTINEL_PATH, True)
        for name, target in (
            ("policygate-watch", self._watch_files),
            ("policygate-reloads", self._watch_opa),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.load_timeout_s + 5)
        _WATCHERS.pop(self.engine, None)

    def _watch_files(self) -> None:
        log.info("watching %s for policy and data changes", self.policy_dir)
        self._loop(self.poll, self.interval_s)

    def _watch_opa(self) -> None:
        self._loop(self.check_reload, self.reload_check_s)

    def _loop(self, step: Callable[[], None], every_s: float) -> None:
        while not self._stop.is_set():
            try:
                step()
            except Exception:  # a watcher must outlive any one bad round
                log.exception("policy watch on %s failed; retrying", self.policy_dir)
            self._stop.wait(every_s)

    def check_reload(self) -> None:
        """If OPA reloaded its files (the sentinel is gone): cache the new revision, push the waivers.

        The sentinel goes back first, so a reload that lands while this runs is noticed next round.
        """
        try:
            if self.engine.get_data(SENTINEL_PATH) is not None:
                return
            self.engine.put_data(SENTINEL_PATH, True)
        except EngineError:
            return  # OPA unreachable: decisions fail closed meanwhile; try again next round
        self.reloads += 1
        # What OPA just read: the files as they are now (saved again since? OPA reloads again, and
        # this runs again). Computed, not read back: OPA's answer is every module's AST.
        files = snapshot(self.policy_dir)
        known, params = params_of(files, self.policy_dir)
        try:
            if known:
                self.engine.note_revision(expected_revision(files, params))
                self._reloaded_digest = files_digest(files)
            else:
                self._reloaded_digest = None
                self.engine.refresh_revision()
        except EngineError:
            pass
        if self.restore is not None:
            self.restore()

    def poll(self) -> None:
        """One round: handle a change of the files (the first round takes the files as a change)."""
        files = snapshot(self.policy_dir)
        if files_digest(files) != self._digest:
            detected = time.monotonic()
            files = self._settle(files)
            self._digest = files_digest(files)
            self._process(files, detected, first=self.state.revision is None and not self.state.errors)

    def _settle(self, files: Files) -> Files:
        """Wait out a write in progress: the same bytes twice in a row (bounded)."""
        for _ in range(_SETTLE_TRIES):
            time.sleep(_SETTLE_S)
            again = snapshot(self.policy_dir)
            if again == files:
                break
            files = again
        return files

    def _process(self, files: Files, detected: float, *, first: bool = False) -> None:
        before = self.state.revision
        errors = json_errors(files)
        params: Any = None
        if not errors:
            errors, params = load(self.binary, self.policy_dir)
        if errors:
            self._refused(errors)
            return
        expected = expected_revision(files, params)
        revision = self._await_revision(expected, files_digest(files), read_now=first)
        if revision != expected:
            self._refused(
                [
                    CheckError(
                        str(self.policy_dir),
                        0,
                        0,
                        "not_loaded",
                        f"OPA did not take the change within {self.load_timeout_s:.0f} s: it holds "
                        f"{revision or 'nothing readable'}, the files give {expected}",
                    )
                ]
            )
            return
        self.check_reload()  # in case this reload slipped between two sentinel checks
        self.state = PolicyState(str(self.policy_dir), revision, [], [], None, now_iso())
        if first:
            log.info("policy revision %s loaded from %s", revision, self.policy_dir)
        elif revision != before:
            log.info(
                "policy reloaded: revision %s (was %s), confirmed %.0f ms after the change was seen",
                revision,
                before,
                (time.monotonic() - detected) * 1000,
            )
        else:
            log.info("policy files changed, revision unchanged (%s)", revision)
        if self.on_reload is not None:
            self.on_reload()
        warnings = self._strict_lints()
        if files_digest(snapshot(self.policy_dir)) != self._digest:
            return  # changed again while linting: the next poll handles the new files
        self.state = replace(self.state, warnings=warnings)
        for w in warnings:
            log.warning("policy lint (opa check --strict; OPA serves it anyway): %s", w)

    def _refused(self, errors: list[CheckError]) -> None:
        """OPA kept what it had: record the errors and the revision it holds (maybe an intermediate save)."""
        try:
            revision: str | None = self.engine.refresh_revision()
        except EngineError:
            revision = self.state.revision
        self.state = PolicyState(
            str(self.policy_dir), revision, errors, [], now_iso(), self.state.reloaded_at
        )
        log.error(
            "policy change refused, OPA keeps serving revision %s: %s",
            revision,
            "; ".join(str(e) for e in errors[:10]),
        )

    def _await_revision(self, expected: str, digest_: str, *, read_now: bool) -> str | None:
        """``expected`` once OPA holds these files, else (time up) the revision OPA reports.

        OPA has them when it reloaded and ``check_reload`` found exactly them on disk. Reading
        the revision from OPA is not cheap (every module's AST): done at once only when no reload
        is to come (``read_now``, at start-up), else once a second while waiting.
        """
        deadline = time.monotonic() + self.load_timeout_s
        revision: str | None = None
        read_at = -1.0 if read_now else time.monotonic()
        while not self._stop.is_set():
            if self._reloaded_digest == digest_:
                return expected
            now = time.monotonic()
            if now - read_at >= 1.0 or now >= deadline:
                read_at = now
                try:
                    revision = self.engine.refresh_revision()
                except EngineError as exc:
                    log.warning("cannot read the policy revision from OPA: %s", exc.message)
                if revision == expected or now >= deadline:
                    return revision
            time.sleep(0.02)
        return revision

    def _strict_lints(self) -> list[CheckError]:
        try:
            return run_check(self.binary, self.policy_dir, strict=True).errors
        except AuthoringError as exc:
            return [CheckError(str(self.policy_dir), 0, 0, "opa_check_failed", str(exc))]


_WATCHERS: weakref.WeakKeyDictionary[OpaEngine, PolicyWatcher] = weakref.WeakKeyDictionary()


def state_of(engine: OpaEngine | None) -> PolicyState | None:
    """The watch state for this engine, or None when nothing watches it (serve without --watch)."""
    if engine is None:
        return None
    watcher = _WATCHERS.get(engine)
    return watcher.state if watcher is not None else None
