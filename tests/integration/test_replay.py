"""`policygate replay`: recorded decisions re-evaluated with candidate policies in a separate real OPA."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from policygate.cli import app
from policygate.decisions.log import DecisionLog
from tests.integration.test_policy_rollout import walkthrough
from tests.support.checkout import EXAMPLES, REGO

runner = CliRunner()


def cli(*args: str, **env: str) -> Any:
    return runner.invoke(app, list(args), env=env or None)


def evaluate(sqlite_url: str, path: Path, **env: str) -> dict[str, Any]:
    result = cli("evaluate", str(path), "--db", sqlite_url, "--format", "json", **env)
    assert result.exit_code in (0, 1, 2), result.output
    decision: dict[str, Any] = json.loads(result.stdout)
    return decision


def replay(sqlite_url: str, policy_dir: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    result = cli("replay", "--policy-dir", str(policy_dir), "--db", sqlite_url, "--format", "json", *extra)
    assert result.exit_code in (0, 1, 3), result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return result.exit_code, report


def records(sqlite_url: str) -> int:
    log = DecisionLog(sqlite_url)
    try:
        return log.verify().records
    finally:
        log.close()


@pytest.fixture
def history(sqlite_url: str, tmp_path: Path) -> dict[str, dict[str, Any]]:
    """A log with an allow, two denials, a document without a ticket, and an error."""
    doc = json.loads((EXAMPLES / "compliant.json").read_text())
    doc["request"]["ticket"] = None
    (tmp_path / "no-ticket.json").write_text(json.dumps(doc))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    return {
        "compliant": evaluate(sqlite_url, EXAMPLES / "compliant.json"),
        "apr002": evaluate(sqlite_url, EXAMPLES / "APR-002.json"),
        "lin004": evaluate(sqlite_url, EXAMPLES / "LIN-004.json"),
        "no_ticket": evaluate(sqlite_url, tmp_path / "no-ticket.json"),
        "error": evaluate(sqlite_url, EXAMPLES / "compliant.json", POLICYGATE_OPA_URL=closed),
    }


def test_unchanged_policies_change_nothing_and_exit_0(sqlite_url: str, history: dict[str, Any]) -> None:
    code, report = replay(sqlite_url, REGO)
    assert code == 0
    assert report["replayed"] == 4 and report["changed"] == 0 and report["changes"] == []
    assert report["skipped"]["error"] == 1  # error decisions are skipped and counted
    text = cli("replay", "--policy-dir", str(REGO), "--db", sqlite_url)
    assert text.exit_code == 0
    assert "skipped 1 error decision(s)" in text.stdout
    assert text.stdout.rstrip().endswith("RESULT: no decision would change")


def test_a_new_rule_lists_exactly_the_decisions_it_changes(
    sqlite_url: str, history: dict[str, Any], tmp_path: Path
) -> None:
    before = records(sqlite_url)
    code, report = replay(sqlite_url, walkthrough(tmp_path))
    assert code == 1
    assert report["changed"] == 1 and report["by_direction"] == {"allow->deny": 1}
    assert report["reasons_added"] == {"CHG-001": 1}
    [change] = report["changes"]
    assert change["decision_id"] == history["no_ticket"]["decision_id"]
    assert change["model"] == "mlflow:models:/fraud-detector/7" and change["target"] == "production"
    assert (change["old_outcome"], change["new_outcome"], change["reasons_added"]) == (
        "allow",
        "deny",
        ["CHG-001"],
    )
    assert report["candidate"]["policy_revision"] != history["compliant"]["policy_revision"]
    assert records(sqlite_url) == before  # a replay records nothing
    text = cli("replay", "--policy-dir", str(walkthrough(tmp_path, name="again")), "--db", sqlite_url).stdout
    assert f"{history['no_ticket']['decision_id']}" in text and "allow -> deny  +CHG-001" in text
    assert "reasons added: CHG-001 x1" in text


def test_dryrun_and_warn_modes_show_as_their_own_changes(
    sqlite_url: str, history: dict[str, Any], tmp_path: Path
) -> None:
    code, dry = replay(sqlite_url, walkthrough(tmp_path, {"CHG-001": "dryrun"}, name="dry"))
    assert code == 3 and dry["exit_code"] == 3  # only dry-run findings change: not a flip
    assert dry["by_direction"] == {"allow->allow (warnings/dry-run changed)": 1}
    assert dry["dryrun_added"] == {"CHG-001": 1} and dry["reasons_added"] == {}
    code, warn = replay(
        sqlite_url, walkthrough(tmp_path, {"APR-002": "warn", "CHG-001": "dryrun"}, name="warn")
    )
    assert code == 1  # a deny became an allow
    assert warn["by_direction"] == {"deny->allow": 1, "allow->allow (warnings/dry-run changed)": 1}
    [change] = [c for c in warn["changes"] if c["direction"] == "deny->allow"]
    assert change["decision_id"] == history["apr002"]["decision_id"]
    assert change["reasons_removed"] == ["APR-002"] and change["warnings_added"] == ["APR-002"]


def test_a_candidate_that_fails_at_runtime_is_a_change_to_error(
    sqlite_url: str, history: dict[str, Any], tmp_path: Path
) -> None:
    """It passes every load check (its examples never reach the conflict, and the author wrote no test
    for CHG-001 that would: every load runs the policy's tests); a recorded document does."""
    policy_dir = walkthrough(tmp_path)
    (policy_dir / "policygate" / "change_test.rego").unlink()
    (policy_dir / "policygate" / "conflict.rego").write_text(
        "package policygate\n\n"
        "_conflict := 1 if {\n\tinput.request.ticket == null\n\tcount(input.approvals) > 0\n}\n\n"
        "_conflict := 2 if {\n\tinput.request.ticket == null\n\tcount(input.approvals) > 0\n}\n"
    )
    change = policy_dir / "policygate" / "change.rego"
    change.write_text(
        change.read_text().replace(
            'target_stage == "production"\n', 'target_stage == "production"\n\tnot _conflict == 3\n', 1
        )
    )
    code, report = replay(sqlite_url, policy_dir)
    assert code == 1 and report["by_direction"] == {"allow->error": 1}, report
    assert "eval_conflict_error" in report["changes"][0]["error"]
    assert "rule CHG-001" in report["changes"][0]["error"]  # the error names the rule it broke


def test_waivers_are_held_as_they_stood_at_each_decision(sqlite_url: str, history: dict[str, Any]) -> None:
    granted = cli(
        "waiver", "add", "--rule", "APR-002", "--model", "mlflow:models:/fraud-detector/7",
        "--reason", "owner approval accepted", "--approved-by", "ciso@example.com", "--expires", "30d",
        "--db", sqlite_url,
    )  # fmt: skip
    assert granted.exit_code == 0, granted.output
    waived = evaluate(sqlite_url, EXAMPLES / "APR-002.json")
    assert waived["outcome"] == "allow" and waived["warnings"][0]["waiver"]
    # before the waiver APR-002 denied, after it it warned: both replay as recorded
    code, report = replay(sqlite_url, REGO)
    assert code == 0 and report["replayed"] == 5, report


def test_filters_by_model_and_time(sqlite_url: str, history: dict[str, Any]) -> None:
    _, report = replay(sqlite_url, REGO, "--model", "mlflow:models:/other/1")
    assert report["replayed"] == 0 and report["model"] == "mlflow:models:/other/1"
    _, report = replay(sqlite_url, REGO, "--model", "mlflow:models:/fraud-detector/07", "--since", "1h")
    assert report["replayed"] == 4 and report["model"] == "mlflow:models:/fraud-detector/7"
    _, report = replay(sqlite_url, REGO, "--since", "2999-01-01T00:00:00Z")
    assert report["replayed"] == 0
    _, report = replay(sqlite_url, REGO, "--since", "all")
    assert report["replayed"] == 4 and report["since"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "--since: invalid time 'yesterday'"),
        (
            ["--model", "mlflow:models:/fraud@champion"],
            "--model: 'mlflow:models:/fraud@champion' is an alias",
        ),
        (["--model", "fraud"], "--model: malformed model reference"),
    ],
)
def test_bad_input_is_exit_2(sqlite_url: str, history: dict[str, Any], args: list[str], message: str) -> None:
    result = cli("replay", "--policy-dir", str(REGO), "--db", sqlite_url, *args)
    assert result.exit_code == 2 and message in result.stderr


def test_a_candidate_that_does_not_compile_is_refused_with_file_and_line(
    sqlite_url: str, history: dict[str, Any], tmp_path: Path
) -> None:
    policy_dir = walkthrough(tmp_path)
    (policy_dir / "policygate" / "bad.rego").write_text("package policygate\n\nbad if {\n\tzz == 1\n}\n")
    result = cli("replay", "--policy-dir", str(policy_dir), "--db", sqlite_url)
    assert result.exit_code == 2
    assert "are refused" in result.stderr and "bad.rego:4:" in result.stderr


def test_no_log_and_no_policies_are_exit_2(tmp_path: Path) -> None:
    missing_log = cli("replay", "--policy-dir", str(REGO), "--db", f"sqlite:///{tmp_path}/none.db")
    assert missing_log.exit_code == 2 and "no decision log at" in missing_log.stderr
    assert not (tmp_path / "none.db").exists()
    no_policies = cli("replay", "--policy-dir", str(tmp_path), "--db", f"sqlite:///{tmp_path}/none.db")
    assert no_policies.exit_code == 2 and "has no policygate/ package directory" in no_policies.stderr
