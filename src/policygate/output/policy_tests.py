"""``policygate policy test`` as text: each test, OPA's trace of each failure, coverage, a verdict."""

from __future__ import annotations

from policygate.policy.authoring import TestCase, TestReport


def render(report: TestReport, *, verdict: bool = True) -> str:
    """The report as text; ``verdict=False`` leaves out the final PASS/FAIL (the caller adds one)."""
    lines = [f"opa test {report.policy_dir}"]
    if report.error:
        lines.append(f"ERROR: {report.error}")
        return "\n".join(lines)

    def order(t: TestCase) -> tuple[bool, str, int]:
        file, _, row = t.location.rpartition(":")
        return (t.status == "pass", file, int(row) if row.isdigit() else 0)

    for t in sorted(report.tests, key=order):
        lines.append(f"  {t.status.upper():<5} {t.package}.{t.name}  ({t.location}, {t.duration_ms:.1f} ms)")
        if t.error:
            lines.append(f"        {t.error}")
    if report.failures:
        lines += ["", "Failures (OPA trace):", *[f"  {ln}".rstrip() for ln in report.failures.splitlines()]]
    c = report.counts
    lines.append("")
    lines.append(
        f"{c['pass']} passed, {c['fail']} failed, {c['error']} errors, {c['skip']} skipped"
        f" of {len(report.tests)} tests"
    )
    if report.coverage is None:
        lines.append("coverage: not measured (OPA reports coverage only when every test passes)")
    else:
        lines.append(f"coverage: {report.coverage:.1f}%")
        partial = [f for f in report.files if f.uncovered_lines]
        if partial:
            lines.append("uncovered lines:")
            lines += [f"  {f.file} ({f.coverage:.1f}%): {f.uncovered_ranges}" for f in partial]
        else:
            lines.append("uncovered lines: none")
    if verdict:
        lines.append("PASS" if report.ok else "FAIL")
    return "\n".join(lines)
