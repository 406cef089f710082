"""The checks a policy directory must pass before policygate lets it decide anything.

Each returns :class:`CheckError` values naming file, line and what is wrong; :mod:`policygate.policy.load`
runs them all. They exist because OPA itself would serve each of these mistakes and the rule would
quietly stop firing (docs/policy-authoring.md, "What policygate refuses").
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
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
            return ".".join(path[: depth + 1])
        nodes = nxt
    return None


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
