"""The mutation suite: each mistake a policy author makes (issue 13's table and more) applied to a copy
of rego/, then the document the affected rule should deny is decided through the CLI (`evaluate`),
a hot reload of `serve --watch`, and `replay`. None of them may ever answer allow. Real OPA."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.checkout import load_example, opa_binary, policy_copy
from tests.support.served import Served

RELOAD_S = 20.0
RUNTIME_NAME = "a-model-name-that-is-forty-two-characters2"
LIN004_BODY = '\tnot present(ev(["lineage", "code", "commit"]))\n\tmsg'


@dataclass(frozen=True)
class Mutation:
    file: str  # relative to rego/
    old: str
    new: str
    rule: str  # the rule whose example document is decided
    refused: bool = True  # refused at load (else: the decision is an error at evaluation)
    names: str = ""  # what the refusal or error must name

    def apply(self, rego: Path) -> None:
        path = rego / self.file
        text = path.read_text()
        assert self.old in text, f"{self.old!r} not in {self.file}"
        path.write_text(text.replace(self.old, self.new, 1))

    def document(self) -> dict[str, Any]:
        doc = load_example(self.rule)
        if not self.refused:
            renamed(doc)  # what the runtime mistake divides by zero on
        return doc


def renamed(doc: dict[str, Any]) -> None:
    """The document about a model called RUNTIME_NAME (its ref names the same model)."""
    subject = doc["subject"]
    subject["ref"] = subject["ref"].replace(f"/{subject['name']}/", f"/{RUNTIME_NAME}/")
    subject["name"] = RUNTIME_NAME


MUTATIONS = {
    "quoted-number": Mutation(
        "data.json",
        '"max_approval_age_days": 90',
        '"max_approval_age_days": "90"',
        "APR-003",
        names="max_approval_age_days",
    ),
    "wrong-type-required-approvals": Mutation(
        "data.json",
        '"production": {"low": 1, "medium": 1, "high": 2}',
        '"production": {"low": 1, "medium": 1, "high": [2]}',
        "APR-001",
        names="required_approvals",
    ),
    "unknown-parameter": Mutation(
        "data.json",
        '"modes": {"INT-001": "warn"}',
        '"modes": {"INT-001": "warn"}, "max_aproval_age_days": 30',
        "APR-003",
        names="max_aproval_age_days",
    ),
    "missing-parameter": Mutation(
        "data.json", '"max_approval_age_days": 90,', "", "APR-003", names="max_approval_age_days"
    ),
    "unknown-mode": Mutation(
        "data.json",
        '"modes": {"INT-001": "warn"}',
        '"modes": {"LIN-004": "enforse"}',
        "LIN-004",
        names="modes.LIN-004",
    ),
    "mode-for-unknown-rule": Mutation(
        "data.json",
        '"modes": {"INT-001": "warn"}',
        '"modes": {"LIN-040": "dryrun"}',
        "LIN-004",
        names="LIN-040",
    ),
    "no-metadata": Mutation(
        "policygate/lineage.rego",
        "# METADATA\n# title: No code version recorded",
        "# title: No code version recorded",
        "LIN-004",
        names="METADATA",
    ),
    "metadata-without-id": Mutation(
        "policygate/lineage.rego", "#   id: LIN-004\n", "", "LIN-004", names="custom.id"
    ),
    "metadata-without-controls": Mutation(
        "policygate/lineage.rego",
        "#   controls:\n#     - NIST AI RMF MAP 4.1\n#     - NIST CSF 2.0 PR.PS-01\n"
        "#     - ISO/IEC 42001 A.6.2.3\n",
        "",
        "LIN-004",
        names="controls",
    ),
    "unknown-severity": Mutation(
        "policygate/lineage.rego",
        "#   id: LIN-004\n#   severity: medium",
        "#   id: LIN-004\n#   severity: urgent",
        "LIN-004",
        names="severity",
    ),
    "duplicate-id": Mutation(
        "policygate/lineage.rego", "#   id: LIN-004", "#   id: LIN-003", "LIN-004", names="LIN-003"
    ),
    "misspelled-input-path": Mutation(
        "policygate/lineage.rego",
        "some ds in input.lineage.datasets",
        "some ds in input.lineage.dataset",
        "LIN-003",
        names="input.lineage.dataset",
    ),
    "misspelled-ev-path": Mutation(
        "policygate/lineage.rego",
        LIN004_BODY,
        LIN004_BODY.replace('"commit"]', '"comit"]'),
        "LIN-004",
        names="lineage.code.comit",
    ),
    "misspelled-object-get-path": Mutation(
        "policygate/ownership.rego",
        'not present(ev(["ownership", "owner"]))',
        'not present(object.get(input, ["ownership", "ownr"], null))',
        "OWN-001",
        names="ownership.ownr",
    ),
    "package-typo": Mutation(
        "policygate/lineage.rego",
        "package policygate\n",
        "package policygat\n",
        "LIN-004",
        names="lineage.rego",
    ),
    "to-number-error": Mutation(
        "policygate/lineage.rego",
        LIN004_BODY,
        "\tto_number(input.subject.name) > 0\n" + LIN004_BODY,
        "LIN-004",
        names="LIN-004",
    ),
    "time-parse-error": Mutation(
        "policygate/lineage.rego",
        LIN004_BODY,
        "\ttime.parse_rfc3339_ns(input.subject.name) > 0\n" + LIN004_BODY,
        "LIN-004",
        names="LIN-004",
    ),
    # No example has a 42-character name, but the shipped tests (an empty input) trip over it: since
    # every load runs the policy's tests, it is refused (a document with such a name would divide by
    # zero at evaluation).
    "division-by-zero-at-runtime": Mutation(
        "policygate/lineage.rego",
        LIN004_BODY,
        "\t1 / (count(input.subject.name) - 42) != 0\n" + LIN004_BODY,
        "LIN-004",
        names="policy_test_failed",
    ),
    "example-no-longer-fires": Mutation(
        "policygate/lineage.rego",
        LIN004_BODY,
        '\tinput.subject.name == "nothing-is-called-this"\n' + LIN004_BODY,
        "LIN-004",
        names="does not fire",
    ),
}


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "policygate.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "POLICYGATE_OPA_BIN": opa_binary(), **env},
        check=False,
    )


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_mistake_never_allows_through_evaluate_and_policy_check(name: str, tmp_path: Path) -> None:
    mutation = MUTATIONS[name]
    rego = policy_copy(tmp_path)
    mutation.apply(rego)
    env = {"POLICYGATE_POLICY_DIR": str(rego), "POLICYGATE_DB_URL": f"sqlite:///{tmp_path}/d.db"}

    checked = cli("policy", "check", env=env)
    assert checked.returncode == (1 if mutation.refused else 0), checked.stdout + checked.stderr
    if mutation.refused:
        assert mutation.names in checked.stderr, checked.stderr

    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps(mutation.document()))
    result = cli("evaluate", str(doc), "--format", "json", env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    decision = json.loads(result.stdout)
    assert decision["outcome"] == "error" and decision["allow"] is False
    [reason] = decision["reasons"]
    assert reason["id"] == "ERR-POLICY-ERROR" and mutation.names in reason["message"], reason
    assert reason["message"].strip().endswith(":") is False


def test_mistakes_never_allow_after_a_hot_reload(tmp_path: Path) -> None:
    """One `serve --watch`; each mistake saved, decided, then undone. A refused reload keeps the last
    good policy deciding (the rule still denies) and /readyz answers 503 naming the problem."""
    rego = policy_copy(tmp_path)
    pristine = {p: p.read_bytes() for p in rego.rglob("*") if p.is_file()}
    env = {"POLICYGATE_POLICY_DIR": str(rego), "POLICYGATE_DB_URL": f"sqlite:///{tmp_path}/d.db"}
    with Served(env, args=["--watch"]) as served:

        def ready() -> requests.Response:
            return requests.get(f"{served.base}/readyz", timeout=5)

        def evaluate(doc: dict[str, Any]) -> dict[str, Any]:
            resp = requests.post(f"{served.base}/v1/evaluate", json={"evidence": doc}, timeout=10)
            assert resp.status_code == 200, resp.text
            body: dict[str, Any] = resp.json()
            return body

        good_revision = ready().json()["policy"]["revision"]
        for name, mutation in sorted(MUTATIONS.items()):
            mutation.apply(rego)
            deadline = time.monotonic() + RELOAD_S
            while True:
                state = ready().json()["policy"]
                if mutation.refused and state["errors"]:
                    break
                if not mutation.refused and state["revision"] != good_revision and state["ready"]:
                    break
                assert time.monotonic() < deadline, f"{name}: the change was never taken up: {state}"
                time.sleep(0.05)
            decision = evaluate(mutation.document())
            assert decision["outcome"] != "allow", (name, decision)
            if mutation.refused:
                assert ready().status_code == 503 and mutation.names in state["error"], (name, state)
                assert state["revision"] == good_revision
                assert decision["outcome"] == "deny" and mutation.rule in [
                    r["id"] for r in decision["reasons"]
                ]
            else:
                assert decision["outcome"] == "error", (name, decision)
                assert mutation.names in decision["reasons"][0]["message"]
            for path, content in pristine.items():
                path.write_bytes(content)
            deadline = time.monotonic() + RELOAD_S
            while not (
                (r := ready()).status_code == 200
                and r.json()["policy"]["errors"] == []
                and r.json()["policy"]["revision"] == good_revision
            ):
                assert time.monotonic() < deadline, f"{name}: never recovered after the undo"
                time.sleep(0.05)
    assert "policy change refused" in served.output


def test_mistakes_never_allow_in_replay(tmp_path: Path) -> None:
    """A refused candidate is refused by replay (exit 2, named); a runtime mistake shows as ->error."""
    base = policy_copy(tmp_path / "base")
    env = {"POLICYGATE_POLICY_DIR": str(base), "POLICYGATE_DB_URL": f"sqlite:///{tmp_path}/d.db"}
    for name in ("LIN-004", "APR-003"):
        doc = tmp_path / f"{name}.json"
        evidence = load_example(name)
        if name == "LIN-004":
            renamed(evidence)
        doc.write_text(json.dumps(evidence))
        assert cli("evaluate", str(doc), env=env).returncode == 1
    for name, mutation in sorted(MUTATIONS.items()):
        candidate = policy_copy(tmp_path / name)
        mutation.apply(candidate)
        replayed = cli(
            "replay", "--policy-dir", str(candidate), "--since", "all", "--format", "json", env=env
        )
        if mutation.refused:
            assert replayed.returncode == 2, (name, replayed.stdout, replayed.stderr)
            assert "refused" in replayed.stderr and mutation.names in replayed.stderr, (name, replayed.stderr)
        else:
            assert replayed.returncode == 1, (name, replayed.stdout, replayed.stderr)
            report = json.loads(replayed.stdout)
            assert report["by_direction"] == {"deny->error": 1}, report
            assert mutation.names in report["changes"][0]["error"]


def test_a_policy_refused_at_start_up_makes_every_decision_an_error(tmp_path: Path) -> None:
    """`serve` on a refused directory: not ready (503 naming the problem), every decision `error`."""
    from fastapi.testclient import TestClient

    from policygate.api.app import create_app
    from policygate.config import Settings

    mutation = MUTATIONS["quoted-number"]
    rego = policy_copy(tmp_path)
    mutation.apply(rego)
    settings = Settings(db_url=f"sqlite:///{tmp_path}/d.db", policy_dir=rego, opa_bin=opa_binary())
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503, ready.text
        assert "data.json:8" in ready.json()["error"] and mutation.names in ready.json()["error"]
        decision = client.post("/v1/evaluate", json={"evidence": mutation.document()}).json()
    assert decision["outcome"] == "error" and decision["reasons"][0]["id"] == "ERR-POLICY-ERROR"
    assert "policy refused" in decision["reasons"][0]["message"]
