"""The audit's pure parts: the governed content, exit codes, report cells, the MLflow filter quoting."""

from __future__ import annotations

import copy
import csv
import io
from typing import Any

from policygate.audit.findings import AuditedModel, AuditRun, Finding
from policygate.audit.governed import changed_fields, governed_digest
from policygate.audit.mlflow_inventory import _quoted
from policygate.output import audit_renderer
from tests.support.checkout import load_example


def doc() -> dict[str, Any]:
    return copy.deepcopy(load_example("compliant"))


def finding(kind: str, model: str = "mlflow:models:/m/1", **extra: Any) -> Finding:
    fields: dict[str, Any] = {"platform": "mlflow", "name": "m", "version": "1", "target": "production"}
    fields |= {"via": "alias champion", "reasons": ["AUD-001"], "severity": "high", "message": "m"}
    return Finding(kind=kind, model=model, **fields, **extra)


def test_what_changes_without_the_model_changing_is_not_governed_content() -> None:
    before, after = doc(), doc()
    after["request"] = {
        "target": {"stage": "staging"},
        "requested_by": "someone-else",
        "requested_at": "2030-01-01T00:00:00Z",
    }
    after["collection"]["collected_at"] = "2030-01-01T00:00:00Z"
    after["subject"]["aliases"] = ["champion", "prod"]
    after["subject"]["tags"]["policygate.decision"] = "allow"
    after["deployment"] = None
    assert governed_digest(before) == governed_digest(after)
    assert changed_fields(before, after) == []


def test_each_governed_change_is_named() -> None:
    before = doc()
    after = doc()
    after["ownership"]["owner"] = "mallory@corp"
    after["subject"]["tags"]["approvals"] = "[]"
    after["approvals"] = []
    assert governed_digest(before) != governed_digest(after)
    assert changed_fields(before, after) == ["subject.tags", "ownership", "approvals"]


def test_exit_codes_clean_findings_incomplete() -> None:
    run = AuditRun(run_id="r", started_at="2026-11-29T00:00:00Z", complete=True)
    assert (run.exit_code, run.status) == (0, "clean")
    run.findings = [finding("missed-event")]
    assert (run.exit_code, run.status) == (1, "findings")
    run.findings.append(finding("unreachable", model="mlflow:models:/n/1"))
    assert run.exit_code == 2
    listing_failed = AuditRun(run_id="r", started_at="x", complete=False, errors=["mlflow: down"])
    assert (listing_failed.exit_code, listing_failed.status) == (2, "incomplete")


def test_csv_never_hands_a_spreadsheet_a_formula() -> None:
    run = AuditRun(
        run_id="r", started_at="x", complete=True, findings=[finding("bypass", model="=HYPERLINK(1)")]
    )
    rows = list(csv.DictReader(io.StringIO(audit_renderer("csv")(run))))
    assert rows[0]["model"] == "'=HYPERLINK(1)"


def test_text_report_of_a_clean_run_says_so() -> None:
    model = AuditedModel(
        model="mlflow:models:/m/1", platform="mlflow", name="m", version="1", target="production",
        via="alias champion", outcome="allow",
    )  # fmt: skip
    run = AuditRun(run_id="r", started_at="x", complete=True, models=[model])
    assert "no findings" in audit_renderer("text")(run)


def test_model_names_are_quoted_for_mlflow_filters() -> None:
    assert _quoted("it's") == "'it\\'s'"
    assert _quoted("plain-name") == "'plain-name'"
