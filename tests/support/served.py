"""A real `policygate serve` process on a free port, for tests that need the service as users run it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from types import TracebackType

import requests

from policygate.demo.mlflow_server import free_port
from tests.support.checkout import REGO, opa_binary


class Served:
    """Started and ready (``/readyz`` 200) on entry; terminated on exit, its output kept in ``output``."""

    def __init__(
        self,
        env: dict[str, str],
        host: str = "127.0.0.1",
        ready_timeout_s: float = 60.0,
        args: Sequence[str] = (),
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            # not an MLflow another test pointed this process at (MLflow's set_tracking_uri sets the
            # variable, and that server may be gone): a test that wants one says so in ``env``
            **{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
            "POLICYGATE_POLICY_DIR": str(REGO),
            "POLICYGATE_OPA_BIN": opa_binary(),
            **env,
        }
        self.host = host
        self.args = list(args)  # more `serve` options, e.g. --watch
        self.ready_timeout_s = ready_timeout_s
        self.output = ""
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Served:
        cmd = [sys.executable, "-m", "policygate.cli", "serve", "--host", self.host, "--port", str(self.port)]
        cmd += self.args
        # a file, not a pipe: nobody reads a pipe while the server runs, and a full one blocks its logging
        self._log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if requests.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise AssertionError(f"policygate serve did not become ready:\n{self.output[-3000:]}")

    def output_so_far(self) -> str:
        """What the server wrote until now, while it runs (pread: the shared file offset stays put)."""
        fd = self._log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.seek(0)
        self.output = self._log.read().decode(errors="replace")
        self._log.close()
        self.proc = None
