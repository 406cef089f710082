"""`policygate evaluate A B C`: one OPA for all, one result line each, exit code the worst of them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from policygate.cli import app
from tests.conftest import EXAMPLES
from tests.integration.test_replay import records

runner = CliRunner()
COMPLIANT, LIN004, APR002 = (str(EXAMPLES / f"{n}.json") for n in ("compliant", "LIN-004", "APR-002"))


def test_several_files_give_one_line_each_and_the_worst_exit_code(sqlite_url: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["evaluate", COMPLIANT, LIN004, APR002, "--db", sqlite_url])
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert [ln.split()[:2] for ln in lines] == [["ALLOW", COMPLIANT], ["DENY", LIN004], ["DENY", APR002]]
    assert lines[1].endswith("-> production  LIN-004") and lines[2].endswith("APR-002")
    assert records(sqlite_url) == 3

    allow_only = runner.invoke(app, ["evaluate", COMPLIANT, COMPLIANT, "--db", sqlite_url])
    assert allow_only.exit_code == 0 and allow_only.stdout.count("ALLOW") == 2

    odd = json.loads(Path(COMPLIANT).read_text())
    odd["collection"]["sources"] = [{"platform": "mlflow", "endpoint": "x", "ok": False, "error": "down"}]
    (tmp_path / "unread.json").write_text(json.dumps(odd))
    mixed = runner.invoke(app, ["evaluate", COMPLIANT, str(tmp_path / "unread.json"), "--db", sqlite_url])
    assert mixed.exit_code == 1 and "EVD-001" in mixed.stdout


def test_an_error_decision_makes_the_exit_code_2(sqlite_url: str, tmp_path: Path) -> None:
    closed = "http://127.0.0.1:9"  # nothing listens: every decision is an error
    result = runner.invoke(
        app, ["evaluate", COMPLIANT, LIN004, "--db", sqlite_url], env={"POLICYGATE_OPA_URL": closed}
    )
    assert result.exit_code == 2
    assert [ln.split()[0] for ln in result.stdout.splitlines()] == ["ERROR", "ERROR"]
    assert "ERR-UNREACHABLE" in result.stdout


def test_json_is_an_array_with_the_file_of_each(sqlite_url: str) -> None:
    result = runner.invoke(app, ["evaluate", COMPLIANT, LIN004, "--db", sqlite_url, "--format", "json"])
    assert result.exit_code == 1
    decisions = json.loads(result.stdout)
    assert [(d["file"], d["outcome"]) for d in decisions] == [(COMPLIANT, "allow"), (LIN004, "deny")]


def test_junit_has_one_suite_per_file(sqlite_url: str) -> None:
    result = runner.invoke(app, ["evaluate", COMPLIANT, LIN004, "--db", sqlite_url, "--format", "junit"])
    assert result.exit_code == 1
    assert result.stdout.count("<testsuite ") == 2 and f'value="{LIN004}"' in result.stdout


def test_a_bad_file_is_exit_2_and_nothing_is_recorded(sqlite_url: str, tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{")
    result = runner.invoke(app, ["evaluate", COMPLIANT, str(tmp_path / "broken.json"), "--db", sqlite_url])
    assert result.exit_code == 2 and "broken.json: invalid JSON at line 1" in result.stderr
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists() or records(sqlite_url) == 0
    explained = runner.invoke(app, ["evaluate", COMPLIANT, LIN004, "--explain", "--db", sqlite_url])
    assert explained.exit_code == 2 and "--explain takes one file at a time" in explained.stderr
