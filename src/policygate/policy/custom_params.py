"""Schemas for the parameters of an author's own rules (``policygate_params.custom``), and two more
literal checks of rule bodies: keys read behind a default, and ``sprintf`` argument counts.

A rule declares the parameters it reads in its METADATA (``custom.params: {name: JSON schema}``);
the ``custom`` object is checked against the union of the declarations (undeclared keys and values
of the wrong type are refused, naming the data file and line), and a literal key read through
``params.custom.KEY`` or ``object.get(params.custom, "KEY", default)`` that no rule declares is
refused: a quoted ``"30"`` or a misspelled key would otherwise make the rule quietly never fire.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from policygate.engine.catalogue import DECISION_PACKAGE, ParsedRule, custom_of
from policygate.engine.runner import CheckError
from policygate.policy.checks import calls, unknown_segment
from policygate.policy.data import PolicyData

CUSTOM = ("policygate_params", "custom")


def declarations(rules: list[ParsedRule]) -> tuple[dict[str, dict[str, Any]], list[CheckError]]:
    declared: dict[str, dict[str, Any]] = {}
    errors = []
    for rule in rules:
        params = custom_of(rule.annotation or {}).get("params")
        if params is None:
            continue
        if not isinstance(params, dict):
            errors.append(
                CheckError(rule.file, rule.row, 1, "params_declaration", "custom.params must be a map")
            )
            continue
        for name, schema in params.items():
            try:
                Draft202012Validator.check_schema(schema if isinstance(schema, dict) else {"type": "?"})
            except SchemaError as exc:
                errors.append(
                    CheckError(
                        rule.file, rule.row, 1, "params_declaration", f"custom.params.{name}: {exc.message}"
                    )
                )
                continue
            if name in declared and declared[name] != schema:
                errors.append(
                    CheckError(
                        rule.file,
                        rule.row,
                        1,
                        "params_declaration",
                        f"custom.params.{name} is declared differently by another rule",
                    )
                )
            declared.setdefault(str(name), schema)
    return declared, errors


def custom_errors(data: PolicyData, declared: dict[str, dict[str, Any]]) -> list[CheckError]:
    custom = data.merged.get(CUSTOM[0], {})
    custom = custom.get(CUSTOM[1]) if isinstance(custom, dict) else None
    if not isinstance(custom, dict):
        return []
    errors = []
    for key, value in sorted(custom.items()):
        file, row = data.where((*CUSTOM, key))
        if key not in declared:
            errors.append(
                CheckError(
                    file,
                    row,
                    1,
                    "params_invalid",
                    f"policygate_params.custom.{key}: no rule declares this parameter (METADATA "
                    f"custom.params); declared: {', '.join(sorted(declared)) or 'none'}",
                )
            )
            continue
        for err in Draft202012Validator(declared[key]).iter_errors(value):
            where = "".join(f".{p}" for p in err.absolute_path)
            errors.append(
                CheckError(
                    file, row, 1, "params_invalid", f"policygate_params.custom.{key}{where}: {err.message}"
                )
            )
    return errors


def _ref(term: Any) -> list[Any] | None:
    if isinstance(term, dict) and term.get("type") == "ref" and isinstance(term.get("value"), list):
        return [t.get("value") if isinstance(t, dict) else None for t in term["value"]]
    return None


def _custom_key(parts: list[Any]) -> str | None:
    """The key of ``params.custom.KEY`` / ``data.policygate_params.custom.KEY``; None otherwise."""
    for head in (["params", "custom"], ["data", "policygate_params", "custom"]):
        if parts[: len(head)] == head and len(parts) > len(head) and isinstance(parts[len(head)], str):
            return str(parts[len(head)])
    return None


def _is_custom(parts: list[Any] | None) -> bool:
    return parts in (["params", "custom"], ["data", "policygate_params", "custom"])


def _refs(node: Any, row: int = 0) -> Iterator[tuple[list[Any], int]]:
    if isinstance(node, dict):
        loc = node.get("location")
        row = int(loc.get("row", row) or row) if isinstance(loc, dict) else row
        parts = _ref(node)
        if parts is not None:
            yield parts, row
        for key, value in node.items():
            if key != "annotations":
                yield from _refs(value, row)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item, row)


def read_errors(rules: list[ParsedRule], declared: dict[str, dict[str, Any]]) -> list[CheckError]:
    """Literal custom keys the rules read that no rule declares."""
    errors = []
    for rule in rules:
        if rule.package != DECISION_PACKAGE:
            continue
        keys: list[tuple[str, int]] = []
        for parts, row in _refs(rule.raw or rule.body, rule.row):
            key = _custom_key(parts)
            if key is not None:
                keys.append((key, row))
        for op, args, loc in calls(rule):
            if op == ["object", "get"] and len(args) >= 2 and _is_custom(_ref(args[0])):
                key_term = args[1]
                if isinstance(key_term, dict) and key_term.get("type") == "string":
                    keys.append((str(key_term["value"]), int(loc.get("row", rule.row) or rule.row)))
        for key, row in keys:
            if key not in declared:
                errors.append(
                    CheckError(
                        rule.file,
                        row,
                        1,
                        "params_undeclared",
                        f"{rule.name} reads policygate_params.custom.{key}, which no rule declares (METADATA "
                        "custom.params): a misspelled key would read as absent",
                    )
                )
    return errors


# ---------------------------------------------------------------------------
# object.get(<evidence>, "key", default) with a key the evidence does not have
# ---------------------------------------------------------------------------


def _evidence_vars(rule: ParsedRule, sets: dict[str, list[str]]) -> dict[str, list[str]]:
    """Variables a rule binds to a part of the evidence: ``some v in input.P`` / ``v := input.P``
    (the elements of P), ``some v in S`` for a set rule S collecting from the evidence."""
    found: dict[str, list[str]] = {}
    for op, args, _ in calls(rule):
        if op in (["internal", "member_2"], ["assign"], ["eq"]) and len(args) == 2:
            var, source = (args[0], args[1]) if op[0] == "internal" else (args[0], args[1])
            parts = _ref(source)
            if not (isinstance(var, dict) and var.get("type") == "var") or parts is None:
                continue
            if parts and parts[0] == "input" and all(isinstance(p, str) for p in parts[1:]):
                path = [str(p) for p in parts[1:]]
                found[str(var["value"])] = [*path, "0"] if op[0] == "internal" else path
            elif len(parts) == 1 and op[0] == "internal" and str(parts[0]) in sets:
                found[str(var["value"])] = sets[str(parts[0])]
    return found


def evidence_default_errors(rules: list[ParsedRule], schema: dict[str, Any]) -> list[CheckError]:
    """``object.get(a, "decison", "approved")`` where ``a`` is an approval: the default hides the
    typo (here a rejected approval would count), so it is refused like a misspelled input path."""
    policy = [r for r in rules if r.package == DECISION_PACKAGE]
    sets: dict[str, list[str]] = {}
    for (
        rule
    ) in policy:  # set rules whose elements are evidence items: `S contains v if { some v in input.P }`
        head = (rule.raw or {}).get("head") or {}
        key = head.get("key")
        if isinstance(key, dict) and key.get("type") == "var":
            bound = _evidence_vars(rule, {})
            if str(key["value"]) in bound:
                sets[rule.name] = bound[str(key["value"])]
    errors = []
    for rule in policy:
        bound = _evidence_vars(rule, sets)
        for op, args, loc in calls(rule):
            if op != ["object", "get"] or len(args) < 3:
                continue
            base, key = args[0], args[1]
            if not (isinstance(base, dict) and base.get("type") == "var" and str(base["value"]) in bound):
                continue
            if not (isinstance(key, dict) and key.get("type") == "string"):
                continue
            path = [*bound[str(base["value"])], str(key["value"])]
            missing = unknown_segment(schema, path)
            if missing is not None:
                errors.append(
                    CheckError(
                        rule.file,
                        int(loc.get("row", rule.row) or rule.row),
                        1,
                        "input_path",
                        f"{rule.name} reads {key['value']!r} of {base['value']} (evidence "
                        f"{'.'.join(bound[str(base['value'])])}) with a default, but the evidence has no "
                        f"{missing} (see `policygate schema`); the default would always apply",
                    )
                )
    return errors


# ---------------------------------------------------------------------------
# sprintf with a literal format and a literal argument list of another length
# ---------------------------------------------------------------------------

_VERB = re.compile(r"%(?:%|[-+# 0]*\d*(?:\.\d+)?[a-zA-Z])")


def sprintf_errors(rules: list[ParsedRule]) -> list[CheckError]:
    errors = []
    for rule in rules:
        for op, args, loc in calls(rule):
            if op != ["sprintf"] or len(args) < 2:
                continue
            fmt, values = args[0], args[1]
            if not (isinstance(fmt, dict) and fmt.get("type") == "string"):
                continue
            if not (isinstance(values, dict) and values.get("type") == "array"):
                continue
            verbs = [v for v in _VERB.findall(str(fmt["value"])) if v != "%%"]
            given = len(values.get("value") or [])
            if len(verbs) != given:
                errors.append(
                    CheckError(
                        rule.file,
                        int(loc.get("row", rule.row) or rule.row),
                        1,
                        "sprintf_arguments",
                        f"sprintf in {rule.name} has {len(verbs)} verb(s) but {given} argument(s): the "
                        "message would read %!v(MISSING) or %!(EXTRA ...)",
                    )
                )
    return errors
