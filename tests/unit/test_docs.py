"""docs/evidence.md documents every field of the evidence schema, as generated."""

from __future__ import annotations

from policygate.schema_doc import markdown
from tests.conftest import ROOT


def test_evidence_doc_matches_the_schema() -> None:
    doc = (ROOT / "docs" / "evidence.md").read_text()
    assert markdown() in doc, (
        "docs/evidence.md is stale: regenerate with `policygate schema --format markdown`"
    )
