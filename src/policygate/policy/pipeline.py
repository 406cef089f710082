"""The static checks of a policy directory's copy, in order: ``opa check --strict`` with the evidence
schema and the capabilities its parameters allow, then every check of the parsed rules (metadata,
heads, evidence paths, custom parameters, ``policygate_params``). Nothing here needs a running OPA."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from policygate.engine import runner
from policygate.engine.catalogue import ParsedRule, RuleLocator, parse_modules, rules_of, violation_rules
from policygate.engine.errors import PARAMS_PATH
from policygate.engine.runner import CheckError
from policygate.policy.capabilities import allowed_of, explained, now_errors, write_capabilities
from policygate.policy.checks import (
    head_errors,
    input_path_errors,
    metadata_errors,
    redefinition_errors,
    test_file_rule_errors,
)
from policygate.policy.custom_params import (
    custom_errors,
    declarations,
    read_errors,
    sprintf_errors,
)
from policygate.policy.data import PolicyData
from policygate.policy.evidence_reads import evidence_default_errors
from policygate.policy.params import check_params
from policygate.policy.report import LoadReport

_DECISION_PACKAGE = re.compile(r"^\s*package\s+policygate\s*$", re.M)


def renamed(error: CheckError, locator: RuleLocator) -> CheckError:
    """The error naming the file the author edits, not the private copy OPA read."""
    return CheckError(locator.local(error.file), error.row, error.col, error.code, error.message)


def static_errors(
    binary: str,
    data: PolicyData,
    policy_dir: Path,
    copy: Path,
    schema_file: Path,
    schema: dict[str, Any],
    report: LoadReport,
    *,
    inprocess: bool = False,
) -> tuple[list[CheckError], list[ParsedRule]]:
    """Everything checked before an OPA starts: (errors, every rule as parsed). ``inprocess``: the
    modules are parsed by the in-process OPA (the same AST as ``opa parse``, no process per file)."""
    locator = RuleLocator([], {str(copy): str(policy_dir)})
    params = data.merged.get(PARAMS_PATH)
    allowed = allowed_of(params)
    capabilities = write_capabilities(binary, schema_file.with_name("capabilities.json"), allowed)
    checked = runner.check(binary, [copy], strict=True, schema=schema_file, capabilities=capabilities)
    errors = [explained(renamed(e, locator), allowed) for e in checked]
    if errors:
        return errors, []
    modules = sorted(p for p in copy.rglob("*.rego") if not p.name.endswith("_test.rego"))
    # test files in the decision package too: a rule written there would silently not be policy
    tests = sorted(p for p in copy.rglob("*_test.rego") if _DECISION_PACKAGE.search(p.read_text()))
    asts, parse_errors = parse_modules(binary, modules + tests, inprocess=inprocess)
    if parse_errors:
        return [CheckError(str(policy_dir), 0, 0, "opa_parse_failed", e) for e in parse_errors], []
    everything = rules_of(asts, locator.rename)
    parsed = [r for r in everything if not r.file.endswith("_test.rego")]
    errors = (
        metadata_errors(parsed)
        + head_errors(parsed)
        + redefinition_errors(parsed)
        + test_file_rule_errors(everything)
        + input_path_errors(parsed, schema)
        + now_errors(parsed, allowed)
        + evidence_default_errors(parsed, schema)
        + sprintf_errors(parsed)
    )
    declared, declaration_errors = declarations(parsed)
    errors += declaration_errors + custom_errors(data, declared) + read_errors(parsed, declared)
    rules = violation_rules(parsed)
    for err in check_params(params, str(policy_dir / "data.json"), {r.id for r in rules}):
        err.file, err.row = data.where(_params_key(err.message)) if params is not None else (err.file, 0)
        errors.append(err)
    if not errors and params is not None:
        modes = params.get("modes") or {}
        rules = [r.model_copy(update={"mode": modes.get(r.id, "enforce")}) for r in rules]
    report.rules = rules
    return [renamed(e, locator) for e in errors], parsed


def _params_key(message: str) -> tuple[str, ...]:
    """The data path a parameter problem names (``policygate_params.a.b: ...``)."""
    return tuple(message.split(": ", 1)[0].split("."))
