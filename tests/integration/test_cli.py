"""`policygate evaluate` and `schema` as a CI job runs them: exit codes, readable output, nothing lost."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from policygate.cli import app
from policygate.decisions.log import DecisionLog
from tests.support.checkout import EXAMPLES

runner = CliRunner()


def run(args: list[str], **env: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, args, env=env or None)


def records(url: str) -> int:
    log = DecisionLog(url)
    try:
        return log.verify().records
    finally:
        log.close()


def test_compliant_exits_0_with_a_readable_line(sqlite_url: str) -> None:
    result = run(["evaluate", str(EXAMPLES / "compliant.json"), "--db", sqlite_url])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "ALLOW: mlflow:models:/fraud-detector/7 -> production"
    assert records(sqlite_url) == 2  # the decision, and the content of the policy revision that made it


def test_deny_exits_1_and_names_rule_severity_and_message(sqlite_url: str) -> None:
    result = run(["evaluate", str(EXAMPLES / "APR-002.json"), "--db", sqlite_url])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("DENY: ")
    assert any(
        line.split()[:3] == ["deny", "APR-002", "high"] or line.split()[1] == "APR-002" for line in lines[1:]
    )


def test_json_format_is_the_decision_contract(sqlite_url: str) -> None:
    result = run(["evaluate", str(EXAMPLES / "LIN-001.json"), "--db", sqlite_url, "--format", "json"])
    assert result.exit_code == 1
    decision = json.loads(result.stdout)
    assert {
        "decision_id", "outcome", "allow", "reasons", "warnings", "policy_revision",
        "evidence_digest", "subject", "target", "evaluated_at",
    } <= set(decision)  # fmt: skip
    assert decision["outcome"] == "deny" and [r["id"] for r in decision["reasons"]] == ["LIN-001"]


def test_closed_opa_port_exits_2_and_the_attempt_is_logged(sqlite_url: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run(
        ["evaluate", str(EXAMPLES / "compliant.json"), "--db", sqlite_url, "--format", "json"],
        POLICYGATE_OPA_URL=f"http://127.0.0.1:{port}",
    )
    assert result.exit_code == 2
    decision = json.loads(result.stdout)
    assert decision["outcome"] == "error" and decision["allow"] is False
    log = DecisionLog(sqlite_url)
    assert log.get(decision["decision_id"])["decision"]["outcome"] == "error"  # type: ignore[index]
    log.close()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "invalid JSON at line 1 column 2"),
        ('{"schema": "policygate.evidence/v1"}', "subject: Field required"),
        ("[]", "(document)"),
    ],
)
def test_bad_input_exits_2_names_the_problem_and_records_nothing(
    content: str, expected: str, tmp_path: Path, sqlite_url: str
) -> None:
    path = tmp_path / "evidence.json"
    path.write_text(content)
    result = run(["evaluate", str(path), "--db", sqlite_url])
    assert result.exit_code == 2
    assert expected in result.stderr
    assert "Traceback" not in result.output
    assert records(sqlite_url) == 0


def test_schema_field_path_is_named(compliant: dict, tmp_path: Path, sqlite_url: str) -> None:  # type: ignore[type-arg]
    compliant["approvals"][0]["at"] = 12
    path = tmp_path / "e.json"
    path.write_text(json.dumps(compliant))
    result = run(["evaluate", str(path), "--db", sqlite_url])
    assert result.exit_code == 2 and "approvals.0.at" in result.stderr


def test_missing_file_exits_2(sqlite_url: str) -> None:
    result = run(["evaluate", "/nonexistent/evidence.json", "--db", sqlite_url])
    assert result.exit_code == 2 and "cannot read /nonexistent/evidence.json" in result.stderr


def test_hostile_files_are_refused_cleanly(tmp_path: Path, sqlite_url: str) -> None:
    """100,000-deep JSON and an endless file: exit 2 with a message, no traceback, bounded memory."""
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    result = run(["evaluate", str(deep), "--db", sqlite_url])
    assert result.exit_code == 2 and "nested too deeply" in result.stderr
    endless = run(["evaluate", "/dev/zero", "--db", sqlite_url])
    assert endless.exit_code == 2 and "is larger than 1048576 bytes" in endless.stderr


def test_schema_command_prints_the_json_schema() -> None:
    result = run(["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["properties"]["schema"]["const"] == "policygate.evidence/v1"
