"""`policygate evaluate A B C`: one OPA for all, one result line each, exit code the worst of them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from policygate.cli import app
from tests.integration.test_replay import records
from tests.support.checkout import EXAMPLES

runner = CliRunner()
COMPLIANT, LIN004, APR002 = (str(EXAMPLES / f"{n}.json") for n in ("compliant", "LIN-004", "APR-002"))


def test_several_files_give_one_line_each_and_the_worst_exit_code(sqlite_url: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["evaluate", COMPLIANT, LIN004, APR002, "--db", sqlite_url])
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert [ln.split()[:2] for ln in lines] == [["ALLOW", COMPLIANT], ["DENY", LIN004], ["DENY", APR002]]
    # evidence a caller wrote is a what-if: every line of `evaluate` says so
    assert lines[1].endswith("-> production  LIN-004  (what-if)") and lines[2].endswith("APR-002  (what-if)")
    assert records(sqlite_url) == 4  # three decisions, and the policy content that decided them (kind policy)

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
    # one file is the decision contract as before: one object, no `file`, no array
    one = runner.invoke(app, ["evaluate", LIN004, "--db", sqlite_url, "--format", "json"])
    assert one.exit_code == 1
    single = json.loads(one.stdout)
    assert isinstance(single, dict) and "file" not in single
    assert single.keys() == decisions[1].keys() - {"file"}


def test_junit_has_one_suite_per_file(sqlite_url: str) -> None:
    result = runner.invoke(app, ["evaluate", COMPLIANT, LIN004, "--db", sqlite_url, "--format", "junit"])
    assert result.exit_code == 1
    assert result.stdout.count("<testsuite ") == 2 and f'value="{LIN004}"' in result.stdout


def test_github_annotates_all_and_writes_a_summary_per_file(sqlite_url: str, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    result = runner.invoke(
        app,
        ["evaluate", COMPLIANT, LIN004, "--db", sqlite_url, "--format", "github"],
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert result.exit_code == 1
    assert result.stdout.startswith("::error title=policygate LIN-004::")
    written = summary.read_text()
    assert written.count("### policygate: ") == 2
    assert written.index(f"`{COMPLIANT}`") < written.index("✅ allowed") < written.index(f"`{LIN004}`")


def test_a_bad_file_is_exit_2_and_nothing_is_recorded(sqlite_url: str, tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{")
    result = runner.invoke(app, ["evaluate", COMPLIANT, str(tmp_path / "broken.json"), "--db", sqlite_url])
    assert result.exit_code == 2 and "broken.json: invalid JSON at line 1" in result.stderr
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists() or records(sqlite_url) == 0
    explained = runner.invoke(app, ["evaluate", COMPLIANT, LIN004, "--explain", "--db", sqlite_url])
    assert explained.exit_code == 2 and "--explain takes one file at a time" in explained.stderr


def test_a_missing_or_invalid_file_among_several_is_named(sqlite_url: str, tmp_path: Path) -> None:
    """Every file is checked before OPA starts: nothing is decided or recorded for the good ones either."""
    missing = runner.invoke(app, ["evaluate", COMPLIANT, "/nonexistent/e.json", LIN004, "--db", sqlite_url])
    assert missing.exit_code == 2 and "cannot read /nonexistent/e.json" in missing.stderr
    assert missing.stdout == ""
    (tmp_path / "not-evidence.json").write_text('{"schema": "policygate.evidence/v1"}')
    invalid = runner.invoke(
        app, ["evaluate", str(tmp_path / "not-evidence.json"), COMPLIANT, "--db", sqlite_url]
    )
    assert (
        invalid.exit_code == 2
        and f"{tmp_path / 'not-evidence.json'}: evidence does not match" in invalid.stderr
    )
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists() or records(sqlite_url) == 0
