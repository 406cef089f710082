"""Render the evidence JSON Schema as a Markdown field table, so docs/evidence.md cannot drift."""

from __future__ import annotations

from typing import Any

from policygate.evidence import json_schema

BEGIN = "<!-- BEGIN GENERATED: policygate schema --format markdown -->"
END = "<!-- END GENERATED -->"


def _type(prop: dict[str, Any], defs: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """A readable type name, and the object schema to descend into (if any)."""
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return "object", defs[name]
    if "const" in prop:
        return f"`{prop['const']}`", None
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"]), None
    if "anyOf" in prop:
        kinds = [_type(p, defs) for p in prop["anyOf"] if p.get("type") != "null"]
        nullable = any(p.get("type") == "null" for p in prop["anyOf"])
        name = " \\| ".join(k for k, _ in kinds) + (" \\| null" if nullable else "")
        return name, next((sub for _, sub in kinds if sub is not None), None)
    if prop.get("type") == "array":
        inner, sub = _type(prop.get("items", {}), defs)
        return f"array of {inner}", sub
    if prop.get("type") == "object":
        return "object (string keys)", None
    return str(prop.get("type", "any")), None


def _rows(schema: dict[str, Any], defs: dict[str, Any], prefix: str) -> list[str]:
    rows: list[str] = []
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        kind, sub = _type(prop, defs)
        desc = prop.get("description") or (sub or {}).get("description", "")
        desc = " ".join(desc.split())
        rows.append(f"| `{path}` | {kind} | {'yes' if name in required else ''} | {desc} |")
        if sub is not None:
            child = f"{path}[]." if kind.startswith("array") else f"{path}."
            rows += _rows(sub, defs, child)
    return rows


def markdown() -> str:
    schema = json_schema()
    lines = ["| field | type | required | meaning |", "|---|---|---|---|"]
    lines += _rows(schema, schema.get("$defs", {}), "")
    return "\n".join([BEGIN, *lines, END])
