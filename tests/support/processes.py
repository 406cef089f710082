"""Helpers for tests that run real processes: OPA servers that must activate a bundle, and the check
that every decision a client got back is in the log as it was answered."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from policygate.decisions.log import DecisionLog
from policygate.demo.mlflow_server import free_port
from tests.support.checkout import opa_binary


def bundle_active(url: str) -> bool:
    """OPA at ``url`` answers and has activated every bundle it is configured with."""
    try:
        return requests.get(url + "/health?bundles=true", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def wait_bundle_active(url: str, timeout_s: float = 30, proc: subprocess.Popen[Any] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not bundle_active(url):
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise AssertionError(f"opa exited {proc.returncode}: {out}")
        assert time.monotonic() < deadline, f"OPA at {url} did not activate its bundle in {timeout_s:g} s"
        time.sleep(0.1)


def record_of(log_url: str, record_id: str) -> dict[str, Any]:
    """The body of one record in the log at ``log_url`` (it must be there)."""
    log = DecisionLog(log_url, create=False)
    try:
        record = log.get(record_id)
    finally:
        log.close()
    assert record is not None, f"{record_id} is not in the log"
    return record


def assert_all_recorded(log_url: str, answered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every answered decision is in the log exactly as answered, and the chain verifies; returns the
    recorded decisions (a decision may be recorded and then not answered: never the other way)."""
    log = DecisionLog(log_url, create=False)
    try:
        for decision in answered:
            stored = log.get(decision["decision_id"])
            assert stored is not None, f"answered decision {decision['decision_id']} is not in the log"
            assert stored["decision"] == decision
        result = log.verify()
        assert result.ok, result.problem
        recorded = log.query(kind="decision", limit=1_000_000)
    finally:
        log.close()
    assert len(recorded) >= len(answered)
    return recorded


def opa_pulling(tmp_path: Path, base: str, public: Path, name: str) -> tuple[list[str], Path]:
    """`opa run` configured to pull the bundle from policygate and verify it with ``public``."""
    config = tmp_path / f"{name}.yaml"
    config.write_text(
        json.dumps(
            {
                "services": {"policygate": {"url": f"{base}/v1"}},
                "bundles": {
                    "policygate": {
                        "service": "policygate",
                        "resource": "bundles/policygate.tar.gz",
                        "polling": {"min_delay_seconds": 1, "max_delay_seconds": 2},
                        "signing": {"keyid": "policygate"},
                    }
                },
                "keys": {"policygate": {"algorithm": "RS256", "key": public.read_text()}},
                "status": {"prometheus": True},  # GET /v1/status: what policygate's /readyz reads
            }
        )
    )  # JSON is YAML
    port = free_port()
    return [
        opa_binary(),
        "run",
        "--server",
        "--addr",
        f"127.0.0.1:{port}",
        "--config-file",
        str(config),
    ], config
