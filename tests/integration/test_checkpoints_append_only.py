"""Checkpoints are append-only: serve's writer never signs a log that does not extend its newest
checkpoint (a cut under a running service or between runs), never replaces a checkpoint file, and a
witness refuses a cut log even when the service's own key re-signs it. SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner, Result

from policygate.api.app import create_app
from policygate.cli import app
from policygate.config import Settings
from policygate.decisions.checkpoint import load_private
from policygate.decisions.log import DecisionLog
from policygate.decisions.witness import bodies_between
from policygate.demo.mlflow_server import free_port
from policygate.engine.opa import OpaEngine
from tests.support.checkout import load_example

runner = CliRunner()


def run(*args: str) -> Result:
    return runner.invoke(app, list(args))


def tamper(url: str, sql: str) -> None:
    log = DecisionLog(url, create=False)
    with log.engine.begin() as conn:
        conn.execute(text(sql))
    log.close()


def files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if not p.name.startswith(".")}


def wait_for(what: Callable[[], Any], timeout_s: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout_s} s")


@pytest.fixture
def key(tmp_path: Path) -> Path:
    assert run("key", "create", "--out", str(tmp_path / "log.key")).exit_code == 0
    return tmp_path / "log.key"


def settings(log_url: str, opa: OpaEngine, key: Path, out: Path, **extra: Any) -> Settings:
    return Settings(
        db_url=log_url,
        opa_url=opa.url,
        opa_token=opa.token,
        checkpoint_key=key,
        checkpoint_dir=out,
        checkpoint_every=1,
        checkpoint_interval_s=1,
        **extra,
    )


def decide(api: TestClient, n: int = 1) -> None:
    for _ in range(n):
        answer = api.post("/v1/evaluate", json={"evidence": load_example("compliant")})
        assert answer.status_code == 200, answer.text


def latest_size(out: Path) -> int:
    latest = out / "latest.txt"
    return int(latest.read_text().splitlines()[1]) if latest.is_file() else -1


def verify_dir(log_url: str, out: Path, key: Path, *more: str) -> Result:
    return run("log", "verify", "--db", log_url, "--checkpoint-dir", str(out), "--key", f"{key}.pub", *more)


def test_a_cut_under_a_running_serve_is_refused_named_and_counted_until_an_operator_resets(
    log_url: str, opa: OpaEngine, key: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "cps"
    caplog.set_level(logging.ERROR)
    with TestClient(create_app(settings(log_url, opa, key, out))) as api:
        decide(api, 3)
        wait_for(lambda: latest_size(out) == 3)
        before = files(out)
        assert "checkpoint-3.txt" in before
        tamper(log_url, "DELETE FROM decision_log WHERE seq >= 2")  # the last two records
        decide(api)  # record 2 again, another one: checkpoint-2.txt must not be overwritten

        def refused() -> dict[str, Any] | None:
            ready = api.get("/readyz")
            return ready.json() if ready.status_code == 503 else None

        body = wait_for(refused)
        assert "decision_log_tampered" in body["problems"]["checkpoints"]
        assert "removed from its end" in body["problems"]["checkpoints"]
        time.sleep(1.5)  # the writer keeps looking; nothing may change in the directory
        assert files(out) == before and latest_size(out) == 3
        assert 'policygate_checkpoint_refusals_total{reason="own"}' in api.get("/metrics").text
        assert any(
            r.levelno == logging.ERROR and "decision_log_tampered" in r.getMessage() for r in caplog.records
        )
        found = verify_dir(log_url, out, key)
        assert found.exit_code == 1 and "checkpoint-3.txt" in found.stdout, found.stdout

        reset = run(
            "log", "checkpoint-reset", "--db", log_url, "--key", str(key), "--checkpoint-dir", str(out),
            "--reason", "INC-7: restored from backup",
        )  # fmt: skip
        assert reset.exit_code == 0, reset.output
        wait_for(lambda: api.get("/readyz").status_code == 200)
        after = files(out)
    assert {k: after[k] for k in before if k != "latest.txt"} == {
        k: v for k, v in before.items() if k != "latest.txt"
    }  # every file written before is still there, unchanged
    assert "checkpoint-3.1.txt" in after  # the size signed again, under a new name
    ok = verify_dir(log_url, out, key)
    assert ok.exit_code == 0, ok.stdout
    assert "ACKNOWLEDGED CUT" in ok.stdout and "INC-7" in ok.stdout


def test_a_cut_between_runs_is_caught_at_start(
    log_url: str, opa: OpaEngine, key: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cps"
    with TestClient(create_app(settings(log_url, opa, key, out))) as api:
        decide(api, 3)
    before = files(out)
    assert latest_size(out) == 3
    tamper(log_url, "DELETE FROM decision_log WHERE seq = 3")  # stopped: the last record goes
    with TestClient(create_app(settings(log_url, opa, key, out))) as api:
        ready = api.get("/readyz")
        assert ready.status_code == 503, ready.text
        assert "decision_log_tampered" in ready.json()["problems"]["checkpoints"]
        decide(api, 2)  # decisions are still recorded; nothing is signed over the cut
        time.sleep(1.5)
    assert files(out) == before
    assert verify_dir(log_url, out, key).exit_code == 1


def test_a_rewritten_record_after_the_checkpoint_size_is_refused_too(
    log_url: str, opa: OpaEngine, key: Path, tmp_path: Path
) -> None:
    """Cut and re-appended to the same size: the record at the checkpoint's size differs."""
    out = tmp_path / "cps"
    with TestClient(create_app(settings(log_url, opa, key, out))) as api:
        decide(api, 2)
    before = files(out)
    tamper(log_url, "DELETE FROM decision_log WHERE seq = 2")
    log = DecisionLog(log_url)
    log.append("decision", "forged", {"decision": {"outcome": "allow"}}, outcome="allow")
    log.close()
    with TestClient(create_app(settings(log_url, opa, key, out))) as api:
        assert "rewritten" in api.get("/readyz").json()["problems"]["checkpoints"]
    assert files(out) == before


def test_a_cut_refilled_to_the_same_size_is_caught_at_once_not_at_the_next_interval(
    log_url: str, opa: OpaEngine, key: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cps"
    with TestClient(create_app(settings(log_url, opa, key, out))) as api:
        decide(api, 2)
    slow = settings(log_url, opa, key, out).model_copy(
        update={"checkpoint_every": 1000, "checkpoint_interval_s": 3600.0}
    )
    with TestClient(create_app(slow)) as api:
        assert api.get("/readyz").status_code == 200
        tamper(log_url, "DELETE FROM decision_log WHERE seq = 2")
        decide(api)  # the same size again, another record 2
        body = wait_for(lambda: api.get("/readyz").json().get("problems", {}).get("checkpoints"), 10)
        assert "decision_log_tampered" in body and "rewritten" in body


# --- witnesses --------------------------------------------------------------------------------


@pytest.fixture
def witness(tmp_path: Path, key: Path) -> Iterator[tuple[str, Path]]:
    """A `policygate witness` process with its own key and store, trusting the service's key."""
    assert run("key", "create", "--out", str(tmp_path / "witness.key")).exit_code == 0
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "policygate.cli", "witness", "--key", str(tmp_path / "witness.key"),
            "--log-key", f"{key}.pub", "--store", str(tmp_path / "witness-store"), "--port", str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(f"{url}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return proc.poll() is not None

    wait_for(up, 30)
    assert proc.poll() is None
    yield url, tmp_path / "witness.key.pub"
    proc.terminate()
    proc.wait(timeout=10)


def countersigned(log_url: str, opa: OpaEngine, key: Path, out: Path, url: str, n: int) -> None:
    """``n`` decisions under a service whose checkpoints a witness countersigns."""
    with TestClient(create_app(settings(log_url, opa, key, out, checkpoint_witness_url=url))) as api:
        decide(api, n)
        wait_for(lambda: latest_size(out) == n)


def test_a_witness_refuses_a_cut_log_even_re_signed_with_the_services_key(
    log_url: str, opa: OpaEngine, key: Path, tmp_path: Path, witness: tuple[str, Path]
) -> None:
    url, witness_pub = witness
    out = tmp_path / "cps"
    countersigned(log_url, opa, key, out, url, 3)
    ok = verify_dir(log_url, out, key, "--witness-key", str(witness_pub))
    assert ok.exit_code == 0 and "countersigned by the witness" in ok.stdout, ok.stdout
    store = tmp_path / "witness-store"
    witnessed = {p: p.read_bytes() for p in store.rglob("*.txt")}

    # The attacker holds the database and the service's key: cuts, appends, re-signs, and wipes the
    # checkpoint directory too.
    tamper(log_url, "DELETE FROM decision_log WHERE seq >= 2")
    log = DecisionLog(log_url)
    for n in range(3):
        log.append("decision", f"forged-{n}", {"decision": {"outcome": "allow"}}, outcome="allow")
    resigned = run("log", "checkpoint", "--db", log_url, "--key", str(key)).stdout
    proof = [base64.b64encode(b.encode()).decode() for b in bodies_between(log, 3, 4)]
    log.close()
    refused = requests.post(f"{url}/add-checkpoint", data="\n".join(["old 3", *proof]) + "\n\n" + resigned)
    assert refused.status_code == 422 and "does not extend" in refused.text
    stale = requests.post(f"{url}/add-checkpoint", data="old 0\n\n" + resigned)
    assert stale.status_code == 409 and stale.text.strip() == "3"  # no trust on first use twice

    wiped = tmp_path / "fresh"
    with TestClient(create_app(settings(log_url, opa, key, wiped, checkpoint_witness_url=url))) as api:
        ready = api.get("/readyz")
        assert ready.status_code == 503 and "the witness refused" in ready.json()["problems"]["checkpoints"]
        assert 'policygate_checkpoint_refusals_total{reason="witness"}' in api.get("/metrics").text
    assert {p: p.read_bytes() for p in store.rglob("*.txt")} == witnessed  # the witness kept its record
    # the fresh directory's checkpoints verify with the service's key, but carry no countersignature
    assert verify_dir(log_url, wiped, key).exit_code == 0
    no_cosig = verify_dir(log_url, wiped, key, "--witness-key", str(witness_pub))
    assert no_cosig.exit_code == 1 and "countersignature" in no_cosig.stdout


def test_log_verify_with_a_witness_key_needs_a_valid_countersignature(
    log_url: str, opa: OpaEngine, key: Path, tmp_path: Path, witness: tuple[str, Path]
) -> None:
    url, witness_pub = witness
    out = tmp_path / "cps"
    countersigned(log_url, opa, key, out, url, 1)
    cosigned = out / "checkpoint-1.txt"

    def verify(path: Path) -> Result:
        return run(
            "log", "verify", "--db", log_url, "--checkpoint", str(path), "--key", f"{key}.pub",
            "--witness-key", str(witness_pub),
        )  # fmt: skip

    assert verify(cosigned).exit_code == 0
    plain = tmp_path / "plain.txt"
    plain.write_text(run("log", "checkpoint", "--db", log_url, "--key", str(key)).stdout)
    assert verify(plain).exit_code == 1  # signed by the service only
    lines = cosigned.read_text().splitlines()
    name, blob = lines[-1].split(" ")[1:]
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 1  # a cosignature that does not verify
    forged = tmp_path / "forged.txt"
    forged.write_text(
        "\n".join([*lines[:-1], f"\u2014 {name} {base64.b64encode(bytes(raw)).decode()}"]) + "\n"
    )
    assert verify(forged).exit_code == 1
    # a line made with the service's own key under the witness's name is no countersignature either
    from policygate.decisions.checkpoint import cosign, parse_signed

    cp = parse_signed(cosigned.read_text(), load_private(key).public_key())
    impostor = tmp_path / "impostor.txt"
    impostor.write_text("\n".join(lines[:-1]) + "\n" + cosign(cp, load_private(key), name))
    assert verify(impostor).exit_code == 1
