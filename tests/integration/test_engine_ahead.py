"""``policygate evaluate`` and ``check`` start their engine before they import the decision log's libraries
(policygate.engine.ahead): OPA compiles the policy while Python imports. Whatever ends the command,
a decision, a bad evidence file or a log that cannot open, the engine started ahead is stopped and
its private copy of the policy removed; a log that cannot open is a clear error, never a traceback,
and nothing is decided. Real OPA, on both engines, the CLI as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.checkout import EXAMPLES, ROOT

ENGINES = ("inprocess", "http")


def evaluate(tmp_path: Path, engine: str, evidence: Path, db: str) -> subprocess.CompletedProcess[str]:
    return policygate(tmp_path, engine, "evaluate", str(evidence), "--db", db)


def policygate(tmp_path: Path, engine: str, *args: str) -> subprocess.CompletedProcess[str]:
    scratch = tmp_path / "tmp"
    scratch.mkdir(exist_ok=True)
    env = {**os.environ, "POLICYGATE_ENGINE": engine, "TMPDIR": str(scratch)}
    return subprocess.run(
        [sys.executable, "-m", "policygate.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def left_behind(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "tmp").iterdir())


@pytest.mark.parametrize("engine", ENGINES)
def test_a_decision_leaves_no_policy_copy_behind(tmp_path: Path, engine: str) -> None:
    done = evaluate(tmp_path, engine, EXAMPLES / "compliant.json", f"sqlite:///{tmp_path}/d.db")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ALLOW" in done.stdout
    assert left_behind(tmp_path) == []


@pytest.mark.parametrize("engine", ENGINES)
def test_bad_evidence_stops_the_engine_started_ahead(tmp_path: Path, engine: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"x": 1}')
    db = tmp_path / "d.db"
    done = evaluate(tmp_path, engine, bad, f"sqlite:///{db}")
    assert done.returncode == 2
    assert "does not match" in done.stderr and "Traceback" not in done.stderr
    assert not db.exists()  # nothing decided, nothing recorded
    assert left_behind(tmp_path) == []


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("db", "says"),
    [
        ("not a url", "the decision log URL does not parse"),
        ("sqlite:///{tmp}/file/d.db", "cannot create the decision log's directory"),
    ],
)
def test_a_log_that_cannot_open_is_a_clear_error_and_stops_the_engine(
    tmp_path: Path, engine: str, db: str, says: str
) -> None:
    (tmp_path / "file").write_text("a file where the log's directory should be")
    url = db.format(tmp=tmp_path)
    for done in (
        evaluate(tmp_path, engine, EXAMPLES / "compliant.json", url),
        policygate(
            tmp_path,
            engine,
            "check",
            "mlflow:models:/fraud-detector/7",
            "--target",
            "production",
            "--db",
            url,
        ),
    ):
        assert done.returncode == 2
        assert says in done.stderr and "no decision was made" in done.stderr
        assert "Traceback" not in done.stderr
        assert left_behind(tmp_path) == []
