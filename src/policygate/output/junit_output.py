"""JUnit XML: each rule a test case, so CI systems list the failing rules by name."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from policygate.decisions.decision import Decision, Reason


def _case(suite: ET.Element, reason: Reason, classname: str) -> ET.Element:
    return ET.SubElement(
        suite, "testcase", name=f"{reason.id} {reason.title or ''}".strip(), classname=classname, time="0"
    )


def _suite(root: ET.Element, decision: Decision, file: str | None) -> tuple[int, int]:
    """One testsuite for one decision; returns its (tests, failures)."""
    subject = (decision.subject or {}).get("ref") or "unknown"
    stage = (decision.target or {}).get("stage") or "unknown"
    classname = f"policygate.{stage}"
    failing = {r.id for r in decision.reasons}
    passed = [rid for rid in decision.rules_checked if rid not in failing]
    tests = len(decision.reasons) + len(decision.warnings) + len(passed) or 1
    suite = ET.SubElement(
        root,
        "testsuite",
        name=f"{subject} -> {stage}" + (f" ({file})" if file else ""),
        tests=str(tests),
        failures="0" if decision.outcome == "error" else str(len(decision.reasons)),
        errors=str(len(decision.reasons)) if decision.outcome == "error" else "0",
        timestamp=decision.evaluated_at,
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("decision_id", decision.decision_id),
        ("outcome", decision.outcome),
        ("policy_revision", decision.policy_revision or ""),
        ("evidence_origin", decision.evidence_origin or ""),
        *((("file", file),) if file else ()),
    ):
        ET.SubElement(props, "property", name=name, value=value)
    kind = "error" if decision.outcome == "error" else "failure"
    for reason in decision.reasons:
        failure = ET.SubElement(
            _case(suite, reason, classname),
            kind,
            message=reason.message,
            type=f"{reason.id} ({reason.severity})",
        )
        failure.text = "\n".join([reason.message, *(f"control: {c}" for c in reason.controls)])
    for reason in decision.warnings:
        ET.SubElement(_case(suite, reason, classname), "system-out").text = f"warning: {reason.message}"
    for rid in passed:
        ET.SubElement(suite, "testcase", name=rid, classname=classname, time="0")
    if tests == 1 and not (decision.reasons or decision.warnings or passed):
        ET.SubElement(suite, "testcase", name="policygate decision", classname=classname, time="0")
    return tests, len(decision.reasons)


def render_many(decisions: list[tuple[str, Decision]]) -> str:
    """One testsuite per file."""
    root = ET.Element("testsuites", name="policygate")
    totals = [_suite(root, d, f) for f, d in decisions]
    root.set("tests", str(sum(t for t, _ in totals)))
    root.set("failures", str(sum(f for _, f in totals)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def render(decision: Decision) -> str:
    root = ET.Element("testsuites", name="policygate")
    tests, failures = _suite(root, decision, None)
    root.attrib = {"name": "policygate", "tests": str(tests), "failures": str(failures)}
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
