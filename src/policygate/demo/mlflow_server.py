"""A real local MLflow tracking server (SQLite, loopback, free port) for the demo, tests and benchmarks.

Uses one worker: with several, every request on a kept-alive connection stalls
about 40 ms (see docs/operations.md).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MlflowServer:
    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        env: dict[str, str] | None = None,
        serve_artifacts: bool = False,
    ) -> None:
        """``serve_artifacts``: the server proxies the artifact store (``--serve-artifacts``, clients
        read files through it, as in most deployments) instead of clients reading a local root."""
        self.data_dir = data_dir
        self.serve_artifacts = serve_artifacts
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 90.0) -> MlflowServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        mlflow_bin = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
        cmd = [
            mlflow_bin,
            "server",
            "--backend-store-uri",
            f"sqlite:///{self.data_dir / 'mlflow.db'}",
            *(
                ["--serve-artifacts", "--artifacts-destination", str(self.data_dir / "artifacts")]
                if self.serve_artifacts
                else ["--default-artifact-root", str(self.data_dir / "artifacts")]
            ),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]
        self.log_path = self.data_dir / "mlflow-server.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        env = {**os.environ, "MLFLOW_WEBHOOK_CACHE_TTL": "1", **self.env}
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"mlflow server exited: see {self.log_path}\n{self.log_path.read_text()[-2000:]}"
                )
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(
            f"mlflow server did not answer /health within {timeout_s:.0f} s; see {self.log_path}"
        )

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, 9)
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> MlflowServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
