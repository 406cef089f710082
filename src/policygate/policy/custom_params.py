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


Paths = list[list[str]]  # the evidence paths a variable may hold ("0" for any array element)


def _var(term: Any) -> str | None:
    return str(term["value"]) if isinstance(term, dict) and term.get("type") == "var" else None


def _value_paths(term: Any, bound: dict[str, Paths], sets: dict[str, Paths], elements: bool) -> Paths:
    """What ``term`` holds as evidence paths: ``input.P`` (its elements when ``elements``), a bound
    variable, or a set rule of evidence items (always elements)."""
    name = _var(term)
    if name is not None:
        if elements and name in sets:
            return sets[name]
        return [[*p, "0"] for p in bound.get(name, [])] if elements else bound.get(name, [])
    parts = _ref(term)
    if not parts or not all(isinstance(p, str) for p in parts):
        return []
    if parts[0] == "input":
        return [[*map(str, parts[1:]), "0"]] if elements else [[str(p) for p in parts[1:]]]
    if len(parts) == 1 and elements and str(parts[0]) in sets:
        return sets[str(parts[0])]
    return []


def _everys(node: Any) -> Iterator[dict[str, Any]]:
    """The ``every k, v in domain { ... }`` nodes in an AST node."""
    if isinstance(node, dict):
        if "domain" in node and "body" in node and "value" in node:
            yield node
        for value in node.values():
            yield from _everys(value)
    elif isinstance(node, list):
        for item in node:
            yield from _everys(item)


def _evidence_vars(rule: ParsedRule, sets: dict[str, Paths], params: dict[str, Paths]) -> dict[str, Paths]:
    """Variables a rule binds to a part of the evidence: ``some v in input.P`` (also ``some k, v``,
    ``every v in``, inside comprehensions), ``v := input.P``, ``some v in S`` for a set rule S of
    evidence items, and a function's parameters (``params``, from its callers)."""
    found: dict[str, Paths] = {k: list(v) for k, v in params.items()}
    raw = rule.raw if isinstance(rule.raw, dict) else {"body": rule.body}
    for _ in range(3):  # a variable bound from another one bound later in the walk
        for op, args, _loc in calls(rule):
            if op == ["internal", "member_2"] and len(args) == 2:
                var, paths = _var(args[0]), _value_paths(args[1], found, sets, True)
            elif op == ["internal", "member_3"] and len(args) == 3:
                var, paths = _var(args[1]), _value_paths(args[2], found, sets, True)
            elif op in (["assign"], ["eq"]) and len(args) == 2:
                var, paths = _var(args[0]), _value_paths(args[1], found, sets, False)
            else:
                continue
            if var is not None and paths:
                found[var] = [p for p in paths if p not in found.get(var, [])] + found.get(var, [])
        for node in _everys({k: v for k, v in raw.items() if k != "annotations"}):
            var, paths = _var(node.get("value")), _value_paths(node.get("domain"), found, sets, True)
            if var is not None and paths:
                found[var] = paths
    return found


def _element_var(rule: ParsedRule) -> str | None:
    """The variable a set rule collects (``S contains v``) or a comprehension-valued rule's term
    (``S := [v | ...]``)."""
    head = (rule.raw or {}).get("head") or {}
    if (var := _var(head.get("key"))) is not None:
        return var
    value = head.get("value")
    if isinstance(value, dict) and value.get("type") in ("arraycomprehension", "setcomprehension"):
        return _var((value.get("value") or {}).get("term"))
    return None


def _bindings(policy: list[ParsedRule]) -> tuple[dict[str, Paths], dict[tuple[str, int], Paths]]:
    """To a fixed point: set rules of evidence items, and function parameters bound at a call site
    (``f(a)`` with ``a`` an approval, or ``f(input.subject)``)."""
    sets: dict[str, Paths] = {}
    params: dict[tuple[str, int], Paths] = {}
    functions = {r.name for r in policy if ((r.raw or {}).get("head") or {}).get("args")}
    for _ in range(6):
        before = (repr(sets), repr(params))
        for rule in policy:
            bound = _evidence_vars(rule, sets, _param_vars(rule, params))
            element = _element_var(rule)
            if element is not None and element in bound:
                sets[rule.name] = bound[element]
            for op, args, _loc in calls(rule):
                if len(op) != 1 or op[0] not in functions:
                    continue
                for i, arg in enumerate(args):
                    for path in _value_paths(arg, bound, sets, False):
                        known = params.setdefault((op[0], i), [])
                        if path not in known:
                            known.append(path)
        if (repr(sets), repr(params)) == before:
            break
    return sets, params


def _param_vars(rule: ParsedRule, params: dict[tuple[str, int], Paths]) -> dict[str, Paths]:
    args = ((rule.raw or {}).get("head") or {}).get("args") or []
    return {
        name: params[(rule.name, i)]
        for i, arg in enumerate(args)
        if (name := _var(arg)) is not None and (rule.name, i) in params
    }


def evidence_default_errors(rules: list[ParsedRule], schema: dict[str, Any]) -> list[CheckError]:
    """``object.get(a, "decison", "approved")`` where ``a`` is an approval (bound in the rule, or a
    function parameter some caller passes one): the default hides the typo (here a rejected approval
    would count), so it is refused like a misspelled input path. A key the evidence has on any of
    the paths a variable may hold passes."""
    policy = [r for r in rules if r.package == DECISION_PACKAGE]
    sets, params = _bindings(policy)
    errors = []
    for rule in policy:
        bound = _evidence_vars(rule, sets, _param_vars(rule, params))
        for op, args, loc in calls(rule):
            if op != ["object", "get"] or len(args) < 3:
                continue
            base, key = _var(args[0]), args[1]
            if (
                base is None
                or base not in bound
                or not (isinstance(key, dict) and key.get("type") == "string")
            ):
                continue
            paths = [[*p, str(key["value"])] for p in bound[base]]
            missing = [m for p in paths if (m := unknown_segment(schema, p)) is not None]
            if len(missing) == len(paths):
                errors.append(
                    CheckError(
                        rule.file,
                        int(loc.get("row", rule.row) or rule.row),
                        1,
                        "input_path",
                        f"{rule.name} reads {key['value']!r} of {base} (evidence "
                        f"{'.'.join(bound[base][0])}) with a default, but the evidence has no "
                        f"{missing[0]} (see `policygate schema`); the default would always apply",
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
