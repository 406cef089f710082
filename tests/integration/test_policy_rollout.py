"""The rollout path end to end on the real OPA, with the rule from docs/policy-authoring.md:
dryrun (recorded only) -> warn (a warning) -> enforce (a deny) -> a waiver (a warning citing it)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from policygate.cli import app
from policygate.config import Settings
from policygate.evidence import EvidenceV1
from policygate.runtime import open_service
from tests.support.checkout import ROOT, opa_binary, policy_copy, without_shipped_tests

runner = CliRunner()
DOC = ROOT / "docs" / "policy-authoring.md"


def doc_blocks() -> tuple[str, str]:
    """The walk-through's rule and its tests, exactly as the guide shows them."""
    blocks = re.findall(r"```rego\n(.*?)```", DOC.read_text(), re.S)
    rule = next(b for b in blocks if "id: CHG-001" in b)
    tests = next(b for b in blocks if b.startswith("package policygate_test"))
    return rule, tests


def doc_example() -> str:
    """The walk-through's example document for CHG-001, exactly as the guide shows it."""
    return next(b for b in re.findall(r"```json\n(.*?)```", DOC.read_text(), re.S) if '"schema"' in b)


def walkthrough(tmp_path: Path, modes: dict[str, str] | None = None, name: str = "rego") -> Path:
    """A copy of rego/ (and the examples beside it) with the guide's CHG-001 rule, its tests and its
    example, and the given modes."""
    target = policy_copy(tmp_path, name)
    if set(modes or {}) - {"CHG-001"}:
        without_shipped_tests(target)  # they assume the shipped modes (every load runs them)
    (tmp_path / "examples" / "evidence" / "CHG-001.json").write_text(doc_example())
    rule, tests = doc_blocks()
    (target / "policygate" / "change.rego").write_text(rule)
    (target / "policygate" / "change_test.rego").write_text(tests)
    data = json.loads((target / "data.json").read_text())
    data["policygate_params"]["modes"] = {"INT-001": "warn", **(modes or {})}
    (target / "data.json").write_text(json.dumps(data, indent=2))
    return target


def no_ticket(compliant: dict[str, Any]) -> EvidenceV1:
    compliant["request"]["ticket"] = None
    return EvidenceV1.model_validate(compliant)


def settings(policy_dir: Path, sqlite_url: str) -> Settings:
    return Settings(db_url=sqlite_url, policy_dir=policy_dir, opa_bin=opa_binary())


def test_the_guides_rule_checks_and_its_tests_pass_with_full_coverage(tmp_path: Path) -> None:
    policy_dir = walkthrough(tmp_path)
    check = runner.invoke(app, ["policy", "check", "--policy-dir", str(policy_dir)])
    assert check.exit_code == 0, check.output
    result = runner.invoke(app, ["policy", "test", "--policy-dir", str(policy_dir)])
    assert result.exit_code == 0, result.output
    assert "PASS  policygate_test.test_chg001_fails_without_ticket" in result.stdout
    assert "coverage: 100.0%" in result.stdout and "uncovered lines: none" in result.stdout


@pytest.mark.parametrize(
    ("mode", "outcome", "where"),
    [("dryrun", "allow", "dryrun"), ("warn", "allow", "warnings"), ("enforce", "deny", "reasons")],
)
def test_a_new_rule_rolls_out_dryrun_warn_enforce(
    tmp_path: Path, sqlite_url: str, compliant: dict[str, Any], mode: str, outcome: str, where: str
) -> None:
    policy_dir = walkthrough(tmp_path, {"CHG-001": mode})
    with open_service(settings(policy_dir, sqlite_url)) as service:
        decision = service.evaluate(no_ticket(compliant)).model_dump()
        allowed = service.evaluate(EvidenceV1.model_validate(load_compliant())).model_dump()
    assert decision["outcome"] == outcome
    for part in ("reasons", "warnings", "dryrun"):
        ids = [r["id"] for r in decision[part]]
        assert ids == (["CHG-001"] if part == where else []), (part, decision)
    assert allowed["outcome"] == "allow" and not allowed["dryrun"] and not allowed["warnings"]
    listed = runner.invoke(app, ["policy", "list", "--policy-dir", str(policy_dir), "--format", "json"])
    rules = {r["id"]: r for r in json.loads(listed.stdout)["rules"]}
    assert rules["CHG-001"]["mode"] == mode
    assert rules["CHG-001"]["title"] == "Production promotion without a change ticket"
    assert rules["CHG-001"]["controls"] == ["NIST CSF 2.0 PR.PS-01", "ISO/IEC 42001 A.6.2.5"]


def load_compliant() -> dict[str, Any]:
    from tests.support.checkout import load_example

    return load_example("compliant")


def test_each_mode_is_a_new_policy_revision(
    tmp_path: Path, sqlite_url: str, compliant: dict[str, Any]
) -> None:
    revisions = set()
    for mode in ("dryrun", "warn", "enforce"):
        policy_dir = walkthrough(tmp_path, {"CHG-001": mode}, name=f"rego-{mode}")
        with open_service(settings(policy_dir, sqlite_url)) as service:
            revisions.add(service.evaluate(no_ticket(dict(compliant))).policy_revision)
    assert len(revisions) == 3


def test_an_enforced_rule_is_waived_for_one_model_until_the_waiver_expires(
    tmp_path: Path, sqlite_url: str, compliant: dict[str, Any]
) -> None:
    policy_dir = walkthrough(tmp_path)
    granted = runner.invoke(
        app,
        [
            "waiver", "add", "--rule", "CHG-001", "--model", "mlflow:models:/fraud-detector/7",
            "--target", "production", "--reason", "hotfix, ticket to follow (INC-311)",
            "--approved-by", "ciso@example.com", "--expires", "7d", "--db", sqlite_url, "--format", "json",
        ],
        env={"POLICYGATE_POLICY_DIR": str(policy_dir)},
    )  # fmt: skip
    assert granted.exit_code == 0, granted.output
    waiver = json.loads(granted.stdout)
    with open_service(settings(policy_dir, sqlite_url)) as service:
        now = service.evaluate(no_ticket(dict(compliant)))
        later_doc = json.loads(json.dumps(compliant))
        later_doc["request"]["ticket"] = None
        later_doc["request"]["requested_at"] = "2099-01-01T00:00:00Z"  # after the waiver expired
        later = service.evaluate(EvidenceV1.model_validate(later_doc))
    assert now.outcome == "allow" and now.reasons == []
    assert [(w.id, w.waiver) for w in now.warnings] == [("CHG-001", waiver["id"])]
    assert "hotfix, ticket to follow (INC-311)" in now.warnings[0].message
    assert later.outcome == "deny" and "CHG-001" in [r.id for r in later.reasons]
    assert not [w for w in later.warnings if w.waiver]


def test_the_walkthrough_keeps_policy_test_green_at_every_step(tmp_path: Path) -> None:
    """docs/policy-authoring.md followed verbatim from a clean copy: `policy test` (the Rego tests and
    every load check) passes after each step, in every rollout mode."""
    target = policy_copy(tmp_path)
    examples = tmp_path / "examples" / "evidence"
    rule, tests = doc_blocks()

    def policy_test(step: str) -> None:
        result = runner.invoke(app, ["policy", "test", "--policy-dir", str(target)])
        assert result.exit_code == 0, f"after {step}:\n{result.output}"

    policy_test("the clean checkout")
    (target / "policygate" / "change.rego").write_text(rule)
    (examples / "CHG-001.json").write_text(doc_example())
    policy_test("step 1 (the rule and its example)")
    (target / "policygate" / "change_test.rego").write_text(tests)
    policy_test("step 2 (its tests)")
    data_file = target / "data.json"
    for step, mode in (("step 5", "dryrun"), ("step 6", "warn"), ("step 6", "enforce")):
        data = json.loads(data_file.read_text())
        data["policygate_params"]["modes"] = {"INT-001": "warn", "CHG-001": mode}
        data_file.write_text(json.dumps(data, indent=2))
        policy_test(f"{step} ({mode})")
    listed = runner.invoke(app, ["policy", "list", "--policy-dir", str(target), "-f", "json"])
    assert {r["id"]: r["mode"] for r in json.loads(listed.stdout)["rules"]}["CHG-001"] == "enforce"
