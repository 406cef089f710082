"""`policygate policy test|check|list` and GET /v1/policy on the real OPA."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from policygate.api.app import create_app
from policygate.cli import app
from policygate.config import Settings
from policygate.engine.opa import OpaEngine
from tests.integration.test_policy_rollout import walkthrough
from tests.support.checkout import EXAMPLES, REGO, opa_binary, policy_copy

# the shipped rules, one example each (examples/evidence/ID.json): the counts the commands print
SHIPPED_RULES = sum(1 for p in EXAMPLES.glob("*.json") if re.fullmatch(r"[A-Z]{3}-\d{3}\.json", p.name))
runner = CliRunner()


def run(*args: str) -> Any:
    return runner.invoke(app, list(args))


# policy test ---------------------------------------------------------------------


def test_policy_test_passes_with_full_coverage_and_names_every_test() -> None:
    result = run("policy", "test", "--policy-dir", str(REGO))
    assert result.exit_code == 0, result.output
    out = result.stdout
    names = set()
    for path in (REGO / "policygate").glob("*_test.rego"):
        names |= set(re.findall(r"^(test_\w+)", path.read_text(), re.M))
    assert names and all(f"PASS  policygate_test.{n} " in out for n in names)
    assert f"{len(names)} passed, 0 failed, 0 errors, 0 skipped of {len(names)} tests" in out
    assert "coverage: 100.0%" in out and out.rstrip().endswith("PASS")


def test_policy_test_json(tmp_path: Path) -> None:
    result = run("policy", "test", "--policy-dir", str(REGO), "--format", "json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and report["ok"] is True and report["coverage"] == 100
    assert report["counts"]["fail"] == 0 and all(t["status"] == "pass" for t in report["tests"])


def test_a_failing_test_exits_1_with_opas_trace(tmp_path: Path) -> None:
    policy_dir = policy_copy(tmp_path)
    (policy_dir / "policygate" / "broken_test.rego").write_text(
        "package policygate_test\n\ntest_compliant_is_denied if {\n\tnot decide(compliant).allow\n}\n"
    )
    result = run("policy", "test", "--policy-dir", str(policy_dir))
    assert result.exit_code == 1
    out = result.stdout
    assert re.search(r"FAIL  policygate_test\.test_compliant_is_denied  \(.*broken_test\.rego:3,", out)
    assert "Failures (OPA trace):" in out and "broken_test.rego:4" in out
    assert "1 failed" in out and out.rstrip().endswith("FAIL")


def test_uncovered_lines_are_listed_with_their_file(tmp_path: Path) -> None:
    policy_dir = policy_copy(tmp_path)
    (policy_dir / "policygate" / "extra.rego").write_text(
        "package policygate\n\nunused_helper(x) := y if {\n\ty := x * 2\n}\n"
    )
    result = run("policy", "test", "--policy-dir", str(policy_dir), "--format", "json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["coverage"] < 100
    files = {Path(f["file"]).name: f for f in report["files"]}
    assert files["extra.rego"]["uncovered"] == "3-4"
    text = run("policy", "test", "--policy-dir", str(policy_dir)).stdout
    assert re.search(r"extra\.rego \(0\.0%\): 3-4", text)


def test_a_policy_that_does_not_compile_fails_the_tests(tmp_path: Path) -> None:
    policy_dir = policy_copy(tmp_path)
    (policy_dir / "policygate" / "bad.rego").write_text("package policygate\n\nbad if {\n\tzz == 1\n}\n")
    result = run("policy", "test", "--policy-dir", str(policy_dir))
    assert result.exit_code == 1
    assert "bad.rego:4: rego_unsafe_var_error: var zz is unsafe" in result.stdout


@pytest.mark.parametrize("command", ["test", "check", "list"])
def test_a_missing_policy_directory_is_exit_2(tmp_path: Path, command: str) -> None:
    result = run("policy", command, "--policy-dir", str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert f"policy directory {tmp_path / 'nope'} does not exist" in result.stderr


# policy check --------------------------------------------------------------------


def test_policy_check_passes_on_the_repository() -> None:
    result = run("policy", "check", "--policy-dir", str(REGO))
    assert result.exit_code == 0 and result.stdout.startswith(f"ok: {REGO}: ")
    assert f"{SHIPPED_RULES} rules, each denies its example" in result.stdout


def test_policy_check_reports_errors_with_file_line_and_column(tmp_path: Path) -> None:
    policy_dir = policy_copy(tmp_path)
    (policy_dir / "policygate" / "sloppy.rego").write_text(
        "package policygate\n\nhelper(x) := 1 if {\n\ty := 2\n}\n"
    )
    result = run("policy", "check", "--policy-dir", str(policy_dir))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert any(re.search(r"sloppy\.rego:3:1: rego_compile_error: unused argument x", ln) for ln in lines)
    assert any(
        re.search(r"sloppy\.rego:4:\d+: rego_compile_error: assigned var y unused", ln) for ln in lines
    )
    report = json.loads(run("policy", "check", "--policy-dir", str(policy_dir), "--format", "json").stdout)
    assert report["ok"] is False and {e["row"] for e in report["errors"]} == {3, 4}


# policy list / GET /v1/policy ------------------------------------------------------


def test_policy_list_shows_revision_and_every_rule(opa: OpaEngine) -> None:
    result = run("policy", "list", "--policy-dir", str(REGO))
    assert result.exit_code == 0, result.output
    first, *rows, summary = result.stdout.splitlines()
    assert first.startswith(f"policy {opa.policy_revision}  ({SHIPPED_RULES} rules)")
    assert len(rows) == SHIPPED_RULES  # INT-001 ships in warn
    assert summary == f"modes: {SHIPPED_RULES - 1} enforce, 1 warn, 0 dryrun"
    assert rows[0].split()[:3] == ["ACC-001", "high", "enforce"]
    listed = json.loads(run("policy", "list", "--policy-dir", str(REGO), "-f", "json").stdout)
    assert listed["policy_revision"] == opa.policy_revision
    apr = next(r for r in listed["rules"] if r["id"] == "APR-002")
    assert apr == {
        "id": "APR-002",
        "title": "Separation of duties broken",
        "severity": "high",
        "mode": "enforce",
        "controls": ["NIST CSF 2.0 PR.AA-05", "NIST AI RMF GOVERN 2.1", "ISO/IEC 42001 A.3.2"],
        "description": apr["description"],
    }
    assert apr["description"].startswith("An approval for the requested stage was given by the model's owner")


def test_a_mode_that_is_not_a_mode_is_refused(tmp_path: Path) -> None:
    policy_dir = walkthrough(tmp_path, {"CHG-001": "DryRun", "OWN-002": "typo"})
    result = run("policy", "list", "--policy-dir", str(policy_dir))
    assert result.exit_code == 2
    assert "policygate_params.modes.CHG-001: Input should be 'enforce', 'warn' or 'dryrun'" in result.stderr
    assert "policygate_params.modes.OWN-002" in result.stderr


def test_modes_come_from_the_data_as_the_policy_reads_them(tmp_path: Path) -> None:
    policy_dir = walkthrough(tmp_path, {"CHG-001": "dryrun", "LIN-004": "warn", "OWN-002": "enforce"})
    listed = json.loads(run("policy", "list", "--policy-dir", str(policy_dir), "-f", "json").stdout)
    modes = {r["id"]: r["mode"] for r in listed["rules"]}
    assert modes["CHG-001"] == "dryrun" and modes["LIN-004"] == "warn" and modes["OWN-002"] == "enforce"
    text = run("policy", "list", "--policy-dir", str(policy_dir)).stdout
    # the walk-through adds CHG-001 (dryrun) and sets LIN-004 to warn; INT-001 ships in warn
    assert f"modes: {SHIPPED_RULES - 2} enforce, 2 warn, 1 dryrun" in text
    table = run("policy", "list", "--policy-dir", str(policy_dir), "-f", "markdown").stdout
    assert "| CHG-001 | Production promotion without a change ticket | medium | dryrun |" in table


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    settings = Settings(db_url=sqlite_url, policy_dir=REGO, opa_bin=opa_binary())
    with TestClient(create_app(settings)) as c:
        yield c


def test_get_policy_matches_the_revision_decisions_record(
    client: TestClient, compliant: dict[str, Any]
) -> None:
    decision = client.post("/v1/evaluate", json={"evidence": compliant}).json()
    resp = client.get("/v1/policy")
    assert resp.status_code == 200
    body = resp.json()
    assert body["policy_revision"] == decision["policy_revision"]
    assert [r["id"] for r in body["rules"]] == sorted(decision["rules_checked"])
    assert all(r["controls"] and r["title"] for r in body["rules"])
    assert {r["id"]: r["mode"] for r in body["rules"] if r["mode"] != "enforce"} == {"INT-001": "warn"}
