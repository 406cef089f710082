"""Policy tests, strict checks and the rule catalogue, all from the real OPA.

- ``run_tests``: ``opa test`` for per-test results, ``opa test --coverage`` for coverage
  and the lines no test reached.
- ``catalogue``: the rules OPA actually holds (``# METADATA`` annotations from the
  server's own AST), each with its enforcement mode as ``data.policygate.mode`` decides
  it, and the policy revision of the same OPA.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from policygate.engine.catalogue import Catalogue, annotated_rules, rule_of_annotation
from policygate.engine.errors import EngineError
from policygate.engine.opa import OpaEngine
from policygate.engine.runner import output_text, run_opa
from policygate.errors import PolicygateError

TestStatus = Literal["pass", "fail", "error", "skip"]


class AuthoringError(PolicygateError):
    """OPA could not be run on the policy directory at all (missing binary or directory)."""


def _opa(binary: str, args: list[str], timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    try:
        return run_opa(binary, args, timeout_s=timeout_s)
    except EngineError as exc:
        raise AuthoringError(exc.message) from None


def _require_dir(policy_dir: Path) -> None:
    if not policy_dir.is_dir():
        raise AuthoringError(f"policy directory {policy_dir} does not exist")


# ---------------------------------------------------------------------------
# opa test
# ---------------------------------------------------------------------------


@dataclass
class TestCase:
    name: str
    package: str
    location: str
    status: TestStatus
    duration_ms: float
    error: str | None = None


@dataclass
class FileCoverage:
    file: str
    coverage: float
    uncovered_lines: list[int] = field(default_factory=list)

    @property
    def uncovered_ranges(self) -> str:
        return line_ranges(self.uncovered_lines)


@dataclass
class TestReport:
    policy_dir: str
    tests: list[TestCase] = field(default_factory=list)
    coverage: float | None = None
    files: list[FileCoverage] = field(default_factory=list)
    failures: str = ""
    error: str | None = None

    @property
    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in ("pass", "fail", "error", "skip")}
        for t in self.tests:
            out[t.status] += 1
        return out

    @property
    def ok(self) -> bool:
        c = self.counts
        return self.error is None and c["fail"] == 0 and c["error"] == 0 and c["pass"] > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy_dir": self.policy_dir,
            "ok": self.ok,
            "counts": self.counts,
            "coverage": self.coverage,
            "tests": [asdict(t) for t in self.tests],
            "files": [{**asdict(f), "uncovered": f.uncovered_ranges} for f in self.files],
            "failures": self.failures or None,
            "error": self.error,
        }


def line_ranges(lines: list[int]) -> str:
    """[3, 4, 5, 9] -> "3-5, 9"."""
    spans: list[list[int]] = []
    for n in sorted(set(lines)):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _case(raw: dict[str, Any]) -> TestCase:
    loc = raw.get("location") or {}
    status: TestStatus = "pass"
    error = None
    if raw.get("skip"):
        status = "skip"
    elif raw.get("error"):
        status = "error"
        err = raw["error"]
        error = err.get("message", str(err)) if isinstance(err, dict) else str(err)
    elif raw.get("fail"):
        status = "fail"
    return TestCase(
        name=str(raw.get("name", "")),
        package=str(raw.get("package", "")).removeprefix("data."),
        location=f"{loc.get('file', '')}:{loc.get('row', '')}",
        status=status,
        duration_ms=round(float(raw.get("duration") or 0) / 1e6, 3),
        error=error,
    )


def _coverage(raw: dict[str, Any]) -> tuple[float, list[FileCoverage]]:
    files = []
    for name, info in sorted((raw.get("files") or {}).items()):
        lines: set[int] = set()
        for rng in info.get("not_covered") or []:
            start = int(rng.get("start", {}).get("row", 0))
            end = int(rng.get("end", {}).get("row", start))
            lines.update(range(start, end + 1))
        files.append(FileCoverage(name, round(float(info.get("coverage", 0)), 2), sorted(lines)))
    return round(float(raw.get("coverage", 0)), 2), files


def run_tests(binary: str, policy_dir: Path) -> TestReport:
    """Run the Rego unit tests: per-test results, then coverage (when they ran)."""
    _require_dir(policy_dir)
    report = TestReport(str(policy_dir))
    proc = _opa(binary, ["test", str(policy_dir), "--format", "json"])
    try:
        results = json.loads(proc.stdout)
    except json.JSONDecodeError:
        report.error = output_text(proc)
        return report
    report.tests = [_case(r) for r in results if isinstance(r, dict)]
    if not report.tests:
        report.error = f"no tests found in {policy_dir} (test rules are named test_*)"
        return report
    if any(t.status in ("fail", "error") for t in report.tests):
        # OPA's own account of each failure (the trace of the failing expressions).
        pretty = _opa(binary, ["test", str(policy_dir), "--explain", "fails"])
        report.failures = _failures_section(pretty.stdout)
    cov = _opa(binary, ["test", str(policy_dir), "--coverage", "--format", "json"])
    try:
        report.coverage, report.files = _coverage(json.loads(cov.stdout))
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
        report.coverage = None
    return report


def _failures_section(text: str) -> str:
    marker = "FAILURES"
    if marker not in text:
        return text.strip()
    body = text.split(marker, 1)[1]
    lines = [ln.rstrip() for ln in body.splitlines() if not set(ln.strip()) <= {"-"} or not ln.strip()]
    # drop the final PASS/FAIL summary lines; the caller prints its own
    while lines and (not lines[-1] or lines[-1].split(":")[0] in ("PASS", "FAIL", "ERROR", "SKIPPED")):
        lines.pop()
    return "\n".join(lines).strip("\n")


# ---------------------------------------------------------------------------
# Rule catalogue (of the OPA that serves)
# ---------------------------------------------------------------------------


def rule_modes(engine: OpaEngine, ids: list[str]) -> dict[str, str]:
    """Each rule's enforcement mode, as the policy itself decides it (``data.policygate.mode``)."""
    if not ids:
        return {}
    try:
        rows = engine.query(
            "modes := {id: m | some id in input.ids; m := data.policygate.mode(id)}", {"ids": ids}
        )
        modes = rows[0]["modes"] if rows else {}
        if isinstance(modes, dict) and set(modes) == set(ids):
            return {k: str(v) for k, v in modes.items()}
    except (EngineError, KeyError, IndexError):
        pass
    # A policy without data.policygate.mode: read the parameter the same way main.rego does.
    params = engine.get_data("policygate_params") or {}
    configured = params.get("modes") if isinstance(params, dict) else None
    configured = configured if isinstance(configured, dict) else {}
    out = {}
    for rule_id in ids:
        value = configured.get(rule_id)
        mode = value.strip().lower() if isinstance(value, str) else ""
        out[rule_id] = mode if mode in ("warn", "dryrun") else "enforce"
    return out


def catalogue(engine: OpaEngine) -> Catalogue:
    """The policy revision and every rule OPA holds, with title, severity, mode and controls."""
    anns = annotated_rules(engine)
    ids = [a["custom"]["id"] for a in anns]
    modes = rule_modes(engine, ids)
    rules = [rule_of_annotation(a, mode=modes.get(a["custom"]["id"], "enforce")) for a in anns]
    return Catalogue(policy_revision=engine.policy_revision, rules=rules)
