"""Issue 26: a team tunes a documented parameter in rego/data.json (within its schema) and the shipped
policy still loads (every load runs the shipped Rego tests, which pin the parameters they assume) and
decides per the new value. Real OPA throughout."""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from policygate.policy.load import load_policy
from policygate.policy.params import Params
from tests.support.checkout import REGO, load_example, opa_binary, policy_copy

Doc = Callable[[], dict[str, Any]]


def compliant() -> dict[str, Any]:
    return load_example("compliant")


def patched(**changes: Any) -> Doc:
    """The compliant document with dotted paths set (``identities__deployment=...``: ``__`` is a dot)."""

    def doc() -> dict[str, Any]:
        d = compliant()
        for dotted, value in changes.items():
            *parents, last = dotted.split("__")
            node = d
            for key in parents:
                node = node[key]
            node[last] = copy.deepcopy(value)
        return d

    return doc


def identity_credentials(*credentials: dict[str, Any]) -> Doc:
    def doc() -> dict[str, Any]:
        d = compliant()
        d["identities"]["deployment"]["credentials"] = list(credentials)
        return d

    return doc


@dataclass(frozen=True)
class Tuned:
    value: Any  # the new value of the parameter
    document: Doc  # evidence the new value decides differently from the shipped one
    rule: str
    where: str  # where the rule's finding is under the new value: deny, warn or none
    shipped: str  # ... and under the shipped value


def _signed_by(signer: str) -> Doc:
    def doc() -> dict[str, Any]:
        d = load_example("INT-001")
        d["artifacts"]["signature"] = {"status": "verified", "signer": signer, "error": None}
        return d

    return doc


CERT_75_DAYS = {"type": "certificate", "expires": "2027-02-03T12:00:00Z"}  # 75 days after the request

TUNED: dict[str, Tuned] = {
    "required_approvals": Tuned(
        {
            "production": {"low": 1, "medium": 3, "high": 3},
            "staging": {"low": 0, "medium": 0, "high": 0},
            "development": {"low": 0, "medium": 0, "high": 0},
        },
        compliant,
        "APR-001",
        "deny",
        "none",
    ),
    "max_approval_age_days": Tuned(9, compliant, "APR-003", "deny", "none"),
    "privileged_roles": Tuned(
        [
            "Owner",
            "Contributor",
            "User Access Administrator",
            "Role Based Access Control Administrator",
            "AzureML Data Scientist",
        ],
        compliant,
        "ACC-001",
        "deny",
        "none",
    ),
    "successful_run_statuses": Tuned(["Completed", "Succeeded"], compliant, "LIN-002", "deny", "none"),
    "require_verified_approvals": Tuned(True, compliant, "APR-001", "deny", "none"),
    "required_fields": Tuned(
        ["approvals", "subject.created_at", "subject.created_by"],
        patched(collection__gaps=["subject.created_by"]),
        "EVD-001",
        "deny",
        "none",
    ),
    "modes": Tuned(
        {"INT-001": "warn", "LIN-002": "warn"},
        patched(lineage__run__status="FAILED"),
        "LIN-002",
        "warn",
        "deny",
    ),
    "allowed_signers": Tuned(["ml-platform"], _signed_by("ml-platform"), "INT-001", "none", "warn"),
    "unverified_files": Tuned(
        {"production": "warn", "staging": "warn", "development": "warn"},
        lambda: load_example("INT-003"),
        "INT-003",
        "warn",
        "deny",
    ),
    "max_unverified_bytes": Tuned(
        10_000_000,
        lambda: _unverified(1000),
        "INT-003",
        "none",
        "deny",
    ),
    "production_auth_modes": Tuned(["aml_token"], compliant, "ACC-003", "deny", "none"),
    "approver_groups": Tuned(
        {"high": ["model-risk"], "medium": ["model-risk-medium"]}, compliant, "APR-004", "deny", "none"
    ),
    "max_credential_days": Tuned(60, identity_credentials(CERT_75_DAYS), "ACC-005", "deny", "none"),
    "require_directory": Tuned(True, patched(identities=None), "OWN-004", "deny", "warn"),
    # compliant: reviewed by its owner 27 hours before the request
    "owner_review_days": Tuned({"high": 90, "medium": 1, "low": 365}, compliant, "LIF-002", "deny", "none"),
    "allow_builtins": Tuned(["http.send"], compliant, "APR-001", "none", "none"),  # loads, same decision
    "min_test_coverage": Tuned(80.0, compliant, "APR-001", "none", "none"),  # the shipped tests cover more
    "custom": Tuned({}, compliant, "APR-001", "none", "none"),  # no shipped rule declares one
}


def _unverified(size: int) -> dict[str, Any]:
    doc = load_example("INT-003")
    doc["artifacts_unverified"] = {**(doc.get("artifacts_unverified") or {}), "size": size}
    return doc


def where(decision: dict[str, Any], rule: str) -> str:
    for part in ("deny", "warn"):
        if rule in [r["id"] for r in decision.get(part) or []]:
            return part
    return "none"


def test_every_documented_parameter_has_a_case() -> None:
    assert set(TUNED) == set(Params.model_fields)


def test_the_shipped_tests_pin_the_shipped_parameters() -> None:
    """fixtures_test.rego's shipped_params (what the shipped tests assume) is rego/data.json as shipped."""
    proc = subprocess.run(
        [opa_binary(), "eval", "-d", str(REGO), "--format", "json", "data.policygate_test.shipped_params"],
        capture_output=True,
        text=True,
        check=True,
    )
    pinned = json.loads(proc.stdout)["result"][0]["expressions"][0]["value"]
    assert pinned == json.loads((REGO / "data.json").read_text())["policygate_params"]


@pytest.mark.parametrize("name", sorted(TUNED))
def test_a_tuned_parameter_loads_and_decides_per_its_value(name: str, tmp_path: Path) -> None:
    tuned = TUNED[name]
    shipped_report, shipped_engine = load_policy(opa_binary(), REGO)
    assert shipped_report.ok and shipped_engine is not None, shipped_report.summary()
    try:
        before = shipped_engine.evaluate(tuned.document())
    finally:
        shipped_engine.close()
    rego = policy_copy(tmp_path)
    data = json.loads((rego / "data.json").read_text())
    assert data["policygate_params"].get(name) != tuned.value
    data["policygate_params"][name] = tuned.value
    (rego / "data.json").write_text(json.dumps(data, indent=2))
    report, engine = load_policy(opa_binary(), rego)
    assert report.ok and engine is not None, f"{name}: refused:\n{report.summary()}"
    try:
        after = engine.evaluate(tuned.document())
    finally:
        engine.close()
    assert (where(before, tuned.rule), where(after, tuned.rule)) == (tuned.shipped, tuned.where), (
        name,
        before,
        after,
    )
