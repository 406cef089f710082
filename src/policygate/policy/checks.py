"""The checks a policy directory must pass before policygate lets it decide anything.

Each returns :class:`CheckError` values naming file, line and what is wrong; :mod:`policygate.policy.load`
runs them all. They exist because OPA itself would serve each of these mistakes and the rule would
quietly stop firing (docs/policy-authoring.md, "What policygate refuses").
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from policygate.engine.catalogue import DECISION_PACKAGE, ParsedRule, custom_of
from policygate.engine.runner import CheckError
from policygate.policy.params import RULE_ID_PATTERN

SEVERITIES = ("low", "medium", "high", "critical")
_ID = re.compile(RULE_ID_PATTERN)


def metadata_errors(rules: list[ParsedRule]) -> list[CheckError]:
    """Every violation rule: in package policygate, with a METADATA block that has a unique id of the
    ABC-123 form, a title, a severity (low|medium|high|critical) and at least one control."""
    errors: list[CheckError] = []
    by_id: dict[str, list[ParsedRule]] = defaultdict(list)
    for rule in rules:
        if not rule.is_violation:
            continue
        where = (rule.file, rule.row, 1)
        if rule.package != DECISION_PACKAGE:
            errors.append(
                CheckError(
                    *where,
                    "rule_package",
                    f"violation rule in package {'.'.join(rule.package)}: only package policygate is "
                    "evaluated, so this rule would never deny",
                )
            )
            continue
        ann = rule.annotation
        if ann is None:
            errors.append(
                CheckError(
                    *where,
                    "rule_metadata",
                    "violation rule without a # METADATA block (id, title, severity, controls)",
                )
            )
            continue
        custom = custom_of(ann)
        rule_id = custom.get("id")
        problems = []
        if not isinstance(rule_id, str) or not _ID.match(rule_id):
            problems.append(f"custom.id {rule_id!r} is missing or not of the form ABC-123")
        title = ann.get("title")
        if not isinstance(title, str) or not title.strip():
            problems.append("title is missing")
        severity = custom.get("severity")
        if severity not in SEVERITIES:
            problems.append(f"custom.severity {severity!r} is not one of {', '.join(SEVERITIES)}")
        controls = custom.get("controls")
        if (
            not isinstance(controls, list)
            or not controls
            or not all(isinstance(c, str) and c.strip() for c in controls)
        ):
            problems.append("custom.controls must list at least one control")
        for problem in problems:
            errors.append(CheckError(*where, "rule_metadata", problem))
        if isinstance(rule_id, str) and _ID.match(rule_id):
            by_id[rule_id].append(rule)
    for rule_id, same in sorted(by_id.items()):
        if len(same) > 1:
            places = ", ".join(f"{r.file}:{r.row}" for r in same)
            for rule in same:
                errors.append(
                    CheckError(
                        rule.file,
                        rule.row,
                        1,
                        "rule_id_duplicate",
                        f"rule id {rule_id} is used by {len(same)} rules ({places}); a waiver or a mode "
                        "for one would silence all of them: give each its own id",
                    )
                )
    return errors


# ---------------------------------------------------------------------------
# Literal evidence paths (ev([...]), object.get(input, ...)) against the evidence schema
# ---------------------------------------------------------------------------


def _walk_calls(node: Any) -> Iterator[tuple[list[str], list[Any], dict[str, Any]]]:
    """(operator path, argument terms, location) of every call in an AST node."""
    if isinstance(node, dict):
        terms = node.get("terms")
        if isinstance(terms, list) and terms and isinstance(terms[0], dict) and terms[0].get("type") == "ref":
            yield _op(terms[0]), terms[1:], node.get("location") or {}
        if node.get("type") == "call" and isinstance(node.get("value"), list) and node["value"]:
            yield _op(node["value"][0]), node["value"][1:], node.get("location") or {}
        for value in node.values():
            yield from _walk_calls(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_calls(item)


def rule_ast(rule: ParsedRule) -> dict[str, Any]:
    """A rule's head, body and else branches, without its annotations."""
    raw = rule.raw if isinstance(rule.raw, dict) else {"body": rule.body}
    return {k: v for k, v in raw.items() if k != "annotations"}


def derived(rule: ParsedRule, name: str, walk: Callable[[dict[str, Any]], Iterable[Any]]) -> list[Any]:
    """``walk`` of the rule's AST, done once per rule (kept in ``rule.derived``): the checks ask for
    the same view again on every binding pass."""
    found = rule.derived.get(name)
    if found is None:
        found = rule.derived[name] = list(walk(rule_ast(rule)))
    return found


def calls(rule: ParsedRule) -> list[tuple[list[str], list[Any], dict[str, Any]]]:
    """Every call in a rule: head, body and else branches (without its annotations)."""
    return derived(rule, "calls", _walk_calls)


def ref_parts(term: Any) -> list[Any] | None:
    """A ref term's parts (``input.subject`` -> ["input", "subject"]; a variable key after the head,
    ``params[name]``, is None); None for any other term."""
    if isinstance(term, dict) and term.get("type") == "ref" and isinstance(term.get("value"), list):
        return [
            t.get("value") if isinstance(t, dict) and (i == 0 or t.get("type") != "var") else None
            for i, t in enumerate(term["value"])
        ]
    return None


def _op(term: Any) -> list[str]:
    if not isinstance(term, dict) or term.get("type") != "ref":
        return []
    return [str(t.get("value")) for t in term.get("value") or [] if isinstance(t, dict)]


def _strings(term: Any) -> list[str] | None:
    """A literal string or array of literal strings, as a path; None when not literal."""
    if not isinstance(term, dict):
        return None
    if term.get("type") == "string":
        return [str(term["value"])]
    if term.get("type") == "array":
        items = term.get("value") or []
        if all(isinstance(i, dict) and i.get("type") == "string" for i in items):
            return [str(i["value"]) for i in items]
    return None


def literal_input_paths(rule: ParsedRule) -> Iterator[tuple[list[str], int]]:
    """Evidence paths a rule reads literally: ``ev(["a", "b"])``, ``object.get(input[.x], "k"|[...], _)``."""
    for op, args, loc in _walk_calls(rule.body):
        row = int(loc.get("row", rule.row) or rule.row)
        if op in (["ev"], ["data", "policygate", "ev"]) and args:
            path = _strings(args[0])
            if path:
                yield path, row
        elif op == ["object", "get"] and len(args) >= 2:
            base = args[0]
            if not isinstance(base, dict) or base.get("type") != "ref":
                continue
            parts = base.get("value") or []
            if not parts or parts[0].get("value") != "input":
                continue
            prefix = _strings({"type": "array", "value": parts[1:]})
            key = _strings(args[1])
            if prefix is not None and key:
                yield prefix + key, row


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> list[dict[str, Any]]:
    """The object schemas a node may be (following $ref and anyOf)."""
    if "$ref" in node:
        name = str(node["$ref"]).rsplit("/", 1)[-1]
        return _resolve(schema, schema.get("$defs", {}).get(name, {}))
    if "anyOf" in node:
        return [r for sub in node["anyOf"] for r in _resolve(schema, sub)]
    return [node]


def unknown_segment(schema: dict[str, Any], path: list[str]) -> str | None:
    """The first part of ``path`` the evidence schema has no field for (None: the path exists)."""
    return _walk_schema(schema, path)[0]


def schema_types(schema: dict[str, Any], path: list[str]) -> set[str]:
    """The JSON types the evidence may hold at ``path`` ("" for a node that does not say)."""
    missing, nodes = _walk_schema(schema, path)
    return set() if missing else {str(n.get("type", "")) for n in nodes}


def _walk_schema(schema: dict[str, Any], path: list[str]) -> tuple[str | None, list[dict[str, Any]]]:
    nodes = _resolve(schema, schema)
    for depth, key in enumerate(path):
        nxt: list[dict[str, Any]] = []
        for node in nodes:
            if node.get("type") == "array" and key.isdigit():
                nxt += _resolve(schema, node.get("items", {}))
            elif key in (node.get("properties") or {}):
                nxt += _resolve(schema, node["properties"][key])
            elif node.get("type") == "object" and node.get("additionalProperties") not in (None, False):
                extra = node["additionalProperties"]
                nxt += _resolve(schema, extra) if isinstance(extra, dict) else [{}]
        if not nxt:
            return ".".join(path[: depth + 1]), []
        nodes = nxt
    return None, nodes


def input_path_errors(rules: list[ParsedRule], schema: dict[str, Any]) -> list[CheckError]:
    """Literal evidence paths (in helpers too) that the evidence schema does not have."""
    errors = []
    for rule in rules:
        if rule.package != DECISION_PACKAGE:
            continue
        for path, row in literal_input_paths(rule):
            missing = unknown_segment(schema, path)
            if missing is not None:
                errors.append(
                    CheckError(
                        rule.file,
                        row,
                        1,
                        "input_path",
                        f"{rule.name} reads evidence path {'.'.join(path)}, but the evidence has no "
                        f"{missing} (see `policygate schema`); the rule would never see a value",
                    )
                )
    return errors


# ---------------------------------------------------------------------------
# Rules that silently are not rules
# ---------------------------------------------------------------------------

TEST_RULE_PREFIXES = ("test_", "todo_test_")


def head_errors(rules: list[ParsedRule]) -> list[CheckError]:
    """A rule with a rule id in its METADATA whose head is not ``violation`` (``deny contains``, a
    conftest habit; ``warn``, ``violations``...): policygate reads only ``data.policygate.violation``,
    so the rule would never deny, and it would leave the catalogue without a word."""
    errors = []
    for rule in rules:
        rule_id = custom_of(rule.annotation or {}).get("id")
        if rule_id is None or rule.is_violation:
            continue
        errors.append(
            CheckError(
                rule.file,
                rule.row,
                1,
                "rule_head",
                f"METADATA with custom.id {rule_id!r} on rule `{rule.name}`: policygate decides only on "
                "`violation` (data.policygate.violation), so this rule would never deny; write "
                "`violation contains reason(rego.metadata.rule(), msg, [...]) if { ... }`",
            )
        )
    return errors


def test_file_rule_errors(rules: list[ParsedRule]) -> list[CheckError]:
    """Rules of package policygate written in a ``*_test.rego`` file (``rules`` are that file's): test
    files are neither checked nor bundled, so such a rule is not part of the policy."""
    return [
        CheckError(
            rule.file,
            rule.row,
            1,
            "test_file_rule",
            f"rule `{rule.name}` of package policygate in a test file: test files (*_test.rego) are not "
            "part of the policy (not checked, not in the revision, not in a bundle); move it to a "
            "policy file",
        )
        for rule in rules
        if rule.package == DECISION_PACKAGE
        and rule.file.endswith("_test.rego")
        and not rule.name.startswith(TEST_RULE_PREFIXES)
    ]


# Sets of the decision package any file may add to: each addition only denies, warns or records
# (``violation``, the area files' findings; the reasons by mode; the policy errors, which fail closed).
OPEN_SETS = frozenset({"violation", "deny_reasons", "warn_reasons", "dryrun_reasons", "policy_errors"})


def redefinition_errors(rules: list[ParsedRule]) -> list[CheckError]:
    """A rule or function of package policygate (other than the :data:`OPEN_SETS`) defined in more
    than one file: Rego merges the definitions, so a "local" helper of the same name as one in
    util.rego changes every rule that uses it (and an addition to a set such as
    ``counted_approvers`` elsewhere would count approvals nobody gave)."""
    where: dict[str, dict[str, int]] = defaultdict(dict)
    for rule in rules:
        if rule.package == DECISION_PACKAGE and rule.name not in OPEN_SETS:
            where[rule.name].setdefault(rule.file, rule.row)
    errors = []
    for name, files in sorted(where.items()):
        if len(files) < 2:
            continue
        places = ", ".join(f"{f}:{r}" for f, r in sorted(files.items()))
        for file, row in sorted(files.items()):
            errors.append(
                CheckError(
                    file,
                    row,
                    1,
                    "rule_redefined",
                    f"`{name}` of package policygate is defined in {len(files)} files ({places}): Rego "
                    "merges the definitions, so each changes the other's rules; give yours its own name",
                )
            )
    return errors
