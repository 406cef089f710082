"""An audit run as JUnit XML: one test case per model in use and target, failing with its findings."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from policygate.audit.findings import AuditRun


def render(run: AuditRun) -> str:
    root = ET.Element("testsuites", name="policygate audit")
    suite = ET.SubElement(
        root,
        "testsuite",
        name=f"policygate audit {run.run_id}",
        tests=str(len(run.models) + len(run.errors)),
        failures=str(sum(1 for m in run.models if _of(run, m.model, m.target, m.via, errors=False))),
        errors=str(
            len(run.errors) + sum(1 for m in run.models if _of(run, m.model, m.target, m.via, errors=True))
        ),
        timestamp=run.started_at,
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("run_id", run.run_id),
        ("policy_revision", run.policy_revision or ""),
        ("status", run.status),
    ):
        ET.SubElement(props, "property", name=name, value=value)
    for error in run.errors:
        case = ET.SubElement(suite, "testcase", name="listing", classname="policygate.audit", time="0")
        ET.SubElement(case, "error", message=error, type="unreachable").text = error
    for m in run.models:
        name = f"{m.model} -> {m.target} ({m.via})"
        case = ET.SubElement(suite, "testcase", name=name, classname=f"policygate.audit.{m.target}", time="0")
        for f in (f for f in run.findings if (f.model, f.target, f.via) == (m.model, m.target, m.via)):
            element = "error" if f.kind == "unreachable" else "failure"
            ET.SubElement(
                case, element, message=f.message, type=f"{f.kind} {' '.join(f.reasons)} ({f.severity})"
            ).text = f.message
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _of(run: AuditRun, model: str, target: str, via: str, *, errors: bool) -> bool:
    return any(
        (f.model, f.target, f.via) == (model, target, via) and (f.kind == "unreachable") == errors
        for f in run.findings
    )
