"""The OPA process policygate runs itself: an ``opa run --server`` child on a free loopback port,
answering only this process (a token only it holds), its output drained into the service log."""

from __future__ import annotations

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
from pathlib import Path
from typing import IO, Any

from policygate.engine.errors import DECISION_PACKAGE, EngineError

opa_log = logging.getLogger("policygate.opa")  # the managed OPA's own output, line by line


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
        import requests  # (here, not at the top: an in-process engine never starts an OPA process)

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
