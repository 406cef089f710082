"""`policygate log export --format opa` writes, byte for byte, the decision-log event a stock OPA
v1.22.3 writes with ``decision_logs.console=true`` for the same query, input and bundle revision.

A real `policygate serve` decides; a stock `opa run --server` on the same policy, loaded as a bundle
named ``policygate`` with the same revision, answers the same input from the same client address.
Only what differs between two OPA processes and two requests may differ: ``decision_id``,
``timestamp`` (and the console logger's ``time``), ``metrics`` values, ``req_id``, and the OPA
instance id in ``labels.id``.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from policygate.bundles.build import build_bundle
from policygate.decisions.log import DecisionLog
from policygate.decisions.opa_event import opa_line
from policygate.demo.mlflow_server import free_port
from tests.support.checkout import EXAMPLES, REGO, opa_binary
from tests.support.served import Served

DECISION_QUERY = "/v1/data/policygate/decision?strict-builtin-errors=true&provenance=true&metrics=true"
PER_PROCESS = ("decision_id", "timestamp", "time", "req_id")  # two OPA processes, two requests


def post_from(port: int, source_port: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST from 127.0.0.1:source_port (0: any), so that both servers see the same client address."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", source_port))
    sock.connect(("127.0.0.1", port))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.sock = sock
    try:
        payload = json.dumps(body).encode()
        conn.request("POST", path, payload, {"Content-Type": "application/json", "Connection": "close"})
        response = conn.getresponse()
        answer = json.loads(response.read())
        assert response.status == 200, answer
        return dict(answer)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def stock_opa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path, str]]:
    """A stock OPA with console decision logs on the policy, as the bundle `policygate bundle build`
    makes (its revision is policygate's), unpacked into a directory named like the bundle."""
    tmp = tmp_path_factory.mktemp("stock-opa")
    built = build_bundle(opa_binary(), REGO, tmp / "bundle.tar.gz")
    assert built.revision, built.report.summary()
    with tarfile.open(tmp / "bundle.tar.gz") as tar:
        tar.extractall(tmp / "policygate", filter="data")
    port = free_port()
    console = tmp / "console.log"
    with console.open("wb") as out:
        proc = subprocess.Popen(
            [opa_binary(), "run", "--server", "--addr", f"127.0.0.1:{port}", "--skip-version-check",
             "--set", "decision_logs.console=true", "--bundle", "policygate"],
            cwd=tmp, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/health?bundles=true", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        yield port, console, built.revision
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def console_event(console: Path, decision_id: str) -> str:
    for _ in range(50):
        for line in console.read_text().splitlines():
            if f'"decision_id":"{decision_id}"' in line and '"msg":"Decision Log"' in line:
                return line
        time.sleep(0.1)
    raise AssertionError(
        f"no decision log line for {decision_id} in OPA's console:\n{console.read_text()[-3000:]}"
    )


def exported(db: str) -> dict[str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "policygate.cli", "log", "export", "--format", "opa", "--db", db],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return {json.loads(line)["decision_id"]: line for line in proc.stdout.splitlines()}


@pytest.mark.parametrize("example", ["compliant", "OWN-001", "APR-002"])
def test_export_is_the_event_a_stock_opa_logs(
    example: str, stock_opa: tuple[int, Path, str], tmp_path: Path
) -> None:
    opa_port, console, revision = stock_opa
    db = f"sqlite:///{tmp_path}/decisions.db"
    evidence = json.loads((EXAMPLES / f"{example}.json").read_text())
    client = free_port()
    with Served({"POLICYGATE_DB_URL": db, "MLFLOW_TRACKING_URI": "", "POLICYGATE_ENGINE": "http"}) as served:
        port = int(served.base.rsplit(":", 1)[1])
        # the second query of each is compared: both OPAs have it compiled then (the same metric names);
        # one connection per 4-tuple: the first from any port, the second from the shared one
        post_from(port, 0, "/v1/evaluate", {"evidence": evidence})
        decision = post_from(port, client, "/v1/evaluate", {"evidence": evidence})
    ours_line = exported(db)[decision["decision_id"]]
    ours = json.loads(ours_line)
    post_from(opa_port, 0, DECISION_QUERY, {"input": ours["input"]})
    answer = post_from(opa_port, client, DECISION_QUERY, {"input": ours["input"]})
    theirs_line = console_event(console, answer["decision_id"])
    theirs = json.loads(theirs_line)

    assert ours["bundles"] == {"policygate": {"revision": revision}} == theirs["bundles"]
    assert ours["requested_by"] == f"127.0.0.1:{client}" == theirs["requested_by"]
    assert ours["result"] == answer["result"]  # exactly as OPA answered: errors kept, no waiver added
    assert set(ours["metrics"]) == set(theirs["metrics"])
    assert ours["labels"]["version"] == "1.22.3" and set(ours["labels"]) == {"id", "version"}
    assert (
        "custom" not in theirs and ours["custom"]["policygate"]["decision"]["outcome"] == decision["outcome"]
    )
    # every other field, byte for byte: ours with what differs per process and per request set to theirs
    same = {k: v for k, v in ours.items() if k != "custom"}
    same.update({k: theirs[k] for k in (*PER_PROCESS, "metrics", "labels")})
    assert opa_line(same) == theirs_line


def test_error_decisions_keep_their_input_and_older_records_say_what_they_lack(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/decisions.db"
    with Served({"POLICYGATE_DB_URL": db, "MLFLOW_TRACKING_URI": "", "POLICYGATE_ENGINE": "http"}) as served:
        failed = requests.post(
            f"{served.base}/v1/decisions",
            json={"model": "mlflow:models:/missing/1", "target": {"stage": "production"}},
            timeout=60,
        ).json()
    assert failed["outcome"] == "error", failed
    log = DecisionLog(db)
    old = {
        "decision": {**failed, "decision_id": "old-1"},
        "evidence": {"subject": {"ref": "mlflow:models:/m/1"}},
    }
    log.append("decision", "old-1", old, model_ref="mlflow:models:/m/1", outcome="error")  # no "opa"
    log.close()
    lines = exported(db)
    error = json.loads(lines[failed["decision_id"]])
    assert error["input"]["subject"]["ref"] == "mlflow:models:/missing/1"
    assert "result" not in error and error["error"]["code"] == failed["reasons"][0]["id"]
    assert error["requested_by"].startswith("127.0.0.1:")
    older = json.loads(lines["old-1"])
    assert older["custom"]["policygate"]["opa_answer_recorded"] is False
    assert "result" not in older and "metrics" not in older and older["input"] == old["evidence"]
