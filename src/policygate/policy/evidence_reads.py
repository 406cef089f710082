"""Evidence reads the type checker cannot see, checked against the evidence schema:
``object.get(a, "decison", "approved")`` where ``a`` holds part of the evidence (bound in the rule,
through ``every``/``some``/comprehensions, a set rule of evidence items, or a function parameter a
caller passes one), and the ``fields`` a rule names in its reason. A default hides a typo (a rejected
approval would count), so it is refused like a misspelled ``input.`` path, with file and line.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from policygate.engine.catalogue import DECISION_PACKAGE, ParsedRule
from policygate.engine.runner import CheckError
from policygate.policy.checks import calls, derived, ref_parts, schema_types, unknown_segment

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
    parts = ref_parts(term)
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
    everys = derived(rule, "everys", _everys)
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
        for node in everys:
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


def _fields_errors(policy: list[ParsedRule], schema: dict[str, Any]) -> list[CheckError]:
    """``reason(meta, msg, ["approvals.privacy"])``: a field the evidence has no path for shows as
    "(missing)" under every finding's "Evidence it read", and hides the field the rule did read."""
    errors = []
    for rule in policy:
        for op, args, loc in calls(rule):
            if op != ["reason"] or len(args) != 3:
                continue
            fields = args[2]
            if not (isinstance(fields, dict) and fields.get("type") == "array"):
                continue
            for item in fields.get("value") or []:
                if not (isinstance(item, dict) and item.get("type") == "string"):
                    continue
                missing = unknown_segment(schema, str(item["value"]).split("."))
                if missing is not None:
                    errors.append(
                        CheckError(
                            rule.file,
                            int(loc.get("row", rule.row) or rule.row),
                            1,
                            "input_path",
                            f"{rule.name} names field {item['value']!r} in its reason, but the evidence has "
                            f"no {missing} (see `policygate schema`)",
                        )
                    )
    return errors


def _truthy_errors(policy: list[ParsedRule], schema: dict[str, Any]) -> list[CheckError]:
    """``handles_pii if input.subject.tags.pii``: a bare expression holds whenever its value is
    defined and not false, so a string field holds for "false" too."""
    errors = []
    for rule in policy:
        for expr in _body_exprs(rule.raw if isinstance(rule.raw, dict) else {"body": rule.body}):
            parts = ref_parts(expr.get("terms"))
            if not parts or parts[0] != "input" or not all(isinstance(p, str) for p in parts[1:]):
                continue
            path = [str(p) for p in parts[1:]]
            types = schema_types(schema, path)
            if types and "boolean" not in types and "" not in types:
                errors.append(
                    CheckError(
                        rule.file,
                        int((expr.get("location") or {}).get("row", rule.row) or rule.row),
                        1,
                        "input_truthy",
                        f"{rule.name} tests input.{'.'.join(path)} on its own, but it is a "
                        f"{'/'.join(sorted(types))}, not a boolean: the condition holds whenever it is "
                        "present "
                        '(also for "false"); compare it, e.g. lower_str(x) == "true"',
                    )
                )
    return errors


def _body_exprs(node: Any) -> Iterator[dict[str, Any]]:
    """Every expression of a rule's bodies (else branches and nested bodies too)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "body" and isinstance(value, list):
                yield from (x for x in value if isinstance(x, dict))
            if key != "annotations":
                yield from _body_exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _body_exprs(item)


def evidence_default_errors(rules: list[ParsedRule], schema: dict[str, Any]) -> list[CheckError]:
    """``object.get(a, "decison", "approved")`` where ``a`` is an approval (bound in the rule, or a
    function parameter some caller passes one): the default hides the typo (here a rejected approval
    would count), so it is refused like a misspelled input path. A key the evidence has on any of
    the paths a variable may hold passes."""
    policy = [r for r in rules if r.package == DECISION_PACKAGE]
    sets, params = _bindings(policy)
    errors = _fields_errors(policy, schema) + _truthy_errors(policy, schema)
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
