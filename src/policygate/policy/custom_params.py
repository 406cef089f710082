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

from policygate.engine.catalogue import DECISION_PACKAGE, ParsedRule, custom_of
from policygate.engine.runner import CheckError
from policygate.policy.checks import calls, ref_parts
from policygate.policy.data import PolicyData
from policygate.policy.params import Params

CUSTOM = ("policygate_params", "custom")


def declarations(rules: list[ParsedRule]) -> tuple[dict[str, dict[str, Any]], list[CheckError]]:
    from jsonschema import Draft202012Validator  # (only when the checks run, not on a remembered pass)
    from jsonschema.exceptions import SchemaError

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
    from jsonschema import Draft202012Validator

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
        parts = ref_parts(node)
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
        errors += _shipped_key_errors(rule)
        for op, args, loc in calls(rule):
            if op == ["object", "get"] and len(args) >= 2 and _is_custom(ref_parts(args[0])):
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


def _is_params(term: Any) -> bool:
    """``params`` (util.rego's name for the parameters) or ``data.policygate_params``."""
    if isinstance(term, dict) and term.get("type") == "var" and term.get("value") == "params":
        return True
    return ref_parts(term) in (["params"], ["data", "policygate_params"])


def _shipped_key_errors(rule: ParsedRule) -> list[CheckError]:
    """``params.max_aproval_age_days`` or ``object.get(params, "max_aproval_age_days", 90)``: a key
    ``policygate_params`` cannot have (the schema forbids others) reads as absent, or as the default."""
    reads: list[tuple[str, int]] = []
    for parts, row in _refs(rule.raw or rule.body, rule.row):
        for head in (["params"], ["data", "policygate_params"]):
            if parts[: len(head)] == head and len(parts) > len(head) and isinstance(parts[len(head)], str):
                reads.append((str(parts[len(head)]), row))
    for op, args, loc in calls(rule):
        if op == ["object", "get"] and len(args) >= 2 and _is_params(args[0]):
            key = args[1]
            if isinstance(key, dict) and key.get("type") == "string":
                reads.append((str(key["value"]), int(loc.get("row", rule.row) or rule.row)))
    return [
        CheckError(
            rule.file,
            row,
            1,
            "params_undeclared",
            f"{rule.name} reads policygate_params.{key}, which is not a parameter (see `policygate schema "
            "--params`; your own go under policygate_params.custom): it would always read as absent",
        )
        for key, row in reads
        if key not in Params.model_fields
    ]


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
