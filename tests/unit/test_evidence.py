from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from policygate.evidence import SCHEMA_ID, EvidenceV1, digest, json_schema


def test_compliant_example_validates_and_round_trips(compliant: dict[str, Any]) -> None:
    evidence = EvidenceV1.model_validate(compliant)
    doc = evidence.to_input()
    assert doc["schema"] == SCHEMA_ID
    assert EvidenceV1.model_validate(doc).to_input() == doc


def test_missing_required_field_is_named(compliant: dict[str, Any]) -> None:
    del compliant["subject"]["name"]
    with pytest.raises(ValidationError) as info:
        EvidenceV1.model_validate(compliant)
    assert ("subject", "name") in [e["loc"] for e in info.value.errors()]


def test_unknown_field_is_refused_not_ignored(compliant: dict[str, Any]) -> None:
    compliant["ownership"]["ownr"] = "typo@corp"
    with pytest.raises(ValidationError) as info:
        EvidenceV1.model_validate(compliant)
    assert ("ownership", "ownr") in [e["loc"] for e in info.value.errors()]


def test_unknown_stage_and_wrong_schema_are_refused(compliant: dict[str, Any]) -> None:
    bad_stage = {**compliant, "request": {**compliant["request"], "target": {"stage": "prod-ish"}}}
    with pytest.raises(ValidationError):
        EvidenceV1.model_validate(bad_stage)
    with pytest.raises(ValidationError):
        EvidenceV1.model_validate({**compliant, "schema": "policygate.evidence/v0"})


def test_digest_ignores_key_order() -> None:
    assert digest({"a": 1, "b": [1, 2]}) == digest({"b": [1, 2], "a": 1})
    assert digest({"a": 1}) != digest({"a": 2})


def test_json_schema_describes_every_part() -> None:
    schema = json_schema()
    assert set(schema["properties"]) == {
        "schema",
        "subject",
        "request",
        "ownership",
        "lineage",
        "approvals",
        "deployment",
        "artifacts",
        "artifacts_unverified",
        "collection",
        "identities",
        "lifecycle",
    }


def test_model_deployments_are_optional_and_typed(compliant: dict[str, Any]) -> None:
    """Documents written before deployment.model_deployments existed still validate; new ones round-trip."""
    compliant["deployment"] = {"endpoint": {"name": "fraud-scoring", "auth_mode": "aad_token"}}
    assert EvidenceV1.model_validate(compliant).to_input()["deployment"]["model_deployments"] == []
    item = {"name": "fraud-detector-v3", "publisher": "Contoso", "model": "fraud-detector", "version": "3"}
    compliant["deployment"]["model_deployments"] = [{**item, "sku": "GlobalStandard", "capacity": 50}]
    doc = EvidenceV1.model_validate(compliant).to_input()
    assert doc["deployment"]["model_deployments"][0] == {
        **item,
        "sku": "GlobalStandard",
        "capacity": 50,
        "source": None,
    }
    compliant["deployment"]["model_deployments"][0]["capacity"] = "50"  # strict: a string is not a number
    with pytest.raises(ValidationError):
        EvidenceV1.model_validate(compliant)
