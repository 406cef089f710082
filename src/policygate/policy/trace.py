"""OPA's own account of a decision: ``opa eval --explain full`` on the policies and data an OPA server
holds, and from its trace each firing rule's conditions, bindings and the policy facts it used."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from policygate.engine.errors import EngineError
from policygate.engine.opa import OpaEngine
from policygate.engine.revision import is_policy_module
from policygate.engine.runner import output_text, run_opa

TRACE_TIMEOUT_S = 30.0
_SKIP_BINDINGS = {"msg", "fields"}  # the message and field list a rule builds: shown elsewhere
_BINDING = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:=")


# ---------------------------------------------------------------------------
# OPA's trace
# ---------------------------------------------------------------------------


class Condition(BaseModel):
    expression: str = Field(description="A condition of the rule that held, as written in the policy.")
    location: str
    bindings: dict[str, Any] = Field(default_factory=dict, description="Variables it bound.")


def term_value(term: Any) -> Any:
    """An OPA AST term (``{"type": ..., "value": ...}``) as plain JSON."""
    if not isinstance(term, dict):
        return term
    kind, value = term.get("type"), term.get("value")
    if kind in ("array", "set"):
        items = [term_value(v) for v in value or []]
        return sorted(items, key=json.dumps) if kind == "set" else items
    if kind == "object":
        obj = {}
        for k, v in value or []:
            key = term_value(k)
            obj[key if isinstance(key, str) else json.dumps(key)] = term_value(v)
        return obj
    if kind == "ref":
        return ".".join(str(term_value(v)) for v in value or [])
    return value


def _data_refs(node: Any, package: list[str], out: set[str], operator: bool = False) -> None:
    """Names of the package's rules a compiled expression reads as values (not called). Private
    helpers (``_name``, a Rego convention) are implementation, not policy facts: left out."""
    if isinstance(node, list):
        for i, child in enumerate(node):
            _data_refs(child, package, out, operator=(i == 0 and len(node) > 1))
        return
    if not isinstance(node, dict):
        return
    if "terms" in node:
        _data_refs(node["terms"], package, out)
        return
    kind, value = node.get("type"), node.get("value")
    if kind == "ref" and not operator and isinstance(value, list) and value:
        parts = [v.get("value") for v in value if isinstance(v, dict)]
        head = len(package) + 1
        name = parts[head] if len(parts) > head else None
        if parts[:head] == ["data", *package] and isinstance(name, str) and not name.startswith("_"):
            out.add(name)
    elif kind == "call" and isinstance(value, list):
        for child in value[1:]:
            _data_refs(child, package, out)
    elif kind in ("array", "set") and isinstance(value, list):
        for child in value:
            _data_refs(child, package, out)
    elif kind == "object" and isinstance(value, list):
        for pair in value:
            _data_refs(pair, package, out)


class Firing(BaseModel):
    rule_id: str
    rule_location: str
    message: str | None
    conditions: list[Condition]
    facts: list[str]


class _Snapshot:
    """The modules and data an OPA server holds, written out for ``opa eval``."""

    def __init__(self, engine: OpaEngine, root: Path) -> None:
        self.root = root
        self.sources: dict[str, tuple[str, list[str]]] = {}  # file written -> (module id, lines)
        self.package = ["policygate"]
        for n, module in enumerate(engine.policies()):
            module_id = str(module.get("id", f"module{n}"))
            raw = str(module.get("raw", ""))
            if not is_policy_module(module_id, raw):  # tests, and OPA's authorization rule
                continue
            path = root / f"{n:03d}_{Path(module_id).name or 'module.rego'}"
            if not path.name.endswith(".rego"):
                path = path.with_name(path.name + ".rego")
            path.write_text(raw, encoding="utf-8")
            self.sources[str(path)] = (_display(engine.local(module_id)), raw.splitlines())
        data: dict[str, Any] = {}
        for key in ("policygate_params", "policygate_waivers"):
            value = engine.get_data(key)
            if value is not None:
                data[key] = value
        (root / "data.json").write_text(json.dumps(data), encoding="utf-8")

    def location(self, loc: dict[str, Any] | None) -> str:
        if not loc:
            return ""
        module_id, _ = self.sources.get(str(loc.get("file", "")), (str(loc.get("file", "")), []))
        return f"{module_id}:{loc.get('row', '')}"

    def expression(self, loc: dict[str, Any]) -> tuple[str, int]:
        """The source text of an expression starting at ``loc`` (continued while brackets are open)
        and the last line it spans."""
        _, lines = self.sources.get(str(loc.get("file", "")), ("", []))
        row, col = int(loc.get("row", 0)), int(loc.get("col", 1))
        if not 0 < row <= len(lines):
            return "", row
        text = lines[row - 1][max(col - 1, 0) :]
        depth = _depth(text)
        last = row
        while depth > 0 and last < len(lines) and last - row < 12:
            more = lines[last].strip()
            text += " " + more
            depth += _depth(more)
            last += 1
        return " ".join(_code(text).split()), last


def _code(text: str) -> str:
    """Text without a trailing comment (a # outside string literals)."""
    out, in_str, esc = [], False, False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch == "#":
            break
        out.append(ch)
    return "".join(out)


def _depth(text: str) -> int:
    code = re.sub(r'"(?:\\.|[^"\\])*"', '""', _code(text))
    return sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")


def _display(module_id: str) -> str:
    """A module id as a path to show: relative to the working directory when under it."""
    path = Path(module_id)
    if not path.is_absolute() and not path.exists() and (Path("/") / path).exists():
        path = Path("/") / path  # OPA drops the leading slash of absolute paths in module ids
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _locals(event: dict[str, Any]) -> dict[str, tuple[str, int, Any]]:
    """Named variables bound at an event: name -> (name, declared row, value)."""
    meta = event.get("LocalMetadata") or {}
    out = {}
    for item in event.get("Locals") or []:
        internal = item.get("name", "")
        info = meta.get(internal) or {}
        name = info.get("name") or internal
        if name.startswith("__") or name.startswith("$"):
            continue
        row = int(((info.get("location") or {}).get("row")) or 0)
        out[name] = (name, row, term_value(item))
    return out


def _firings(trace: list[dict[str, Any]], snap: _Snapshot) -> list[Firing]:
    paths: dict[int, dict[int, dict[str, Any]]] = {}
    out: list[Firing] = []
    for event in trace:
        op, qid, node = event.get("Op"), event.get("QueryID"), event.get("Node")
        if op == "Eval" and isinstance(node, dict) and "index" in node and isinstance(qid, int):
            path = paths.setdefault(qid, {})
            idx = int(node["index"])
            for stale in [k for k in path if k > idx]:
                del path[stale]
            path[idx] = event
        elif op == "Exit" and isinstance(node, dict) and node.get("annotations") and isinstance(qid, int):
            rule_id = next(
                (a.get("custom", {}).get("id") for a in node["annotations"] if a.get("custom", {}).get("id")),
                None,
            )
            if rule_id:
                out.append(_firing(str(rule_id), event, paths.get(qid, {}), snap))
    return out


def _firing(
    rule_id: str, exit_event: dict[str, Any], path: dict[int, dict[str, Any]], snap: _Snapshot
) -> Firing:
    bound = _locals(exit_event)
    msg = bound.get("msg")
    conditions: list[Condition] = []
    facts: set[str] = set()
    evals = [path[i] for i in sorted(path)]
    for event in evals:
        node = event["Node"]
        if node.get("generated"):
            continue
        loc = event.get("Location") or {}
        text, last_row = snap.expression(loc)
        m = _BINDING.match(text)
        if not text or (m and m.group(1) in _SKIP_BINDINGS):
            continue
        row = int(loc.get("row", 0))
        used: set[str] = set()
        for other in evals:  # the compiled parts of this condition (same file, same line)
            oloc = other.get("Location") or {}
            if oloc.get("file") == loc.get("file") and row <= int(oloc.get("row", 0)) <= last_row:
                _data_refs(other["Node"], snap.package, used)
        facts |= used
        bindings = {
            name: value for name, r, value in bound.values() if r == row and name not in _SKIP_BINDINGS
        }
        conditions.append(Condition(expression=text, location=snap.location(loc), bindings=bindings))
    return Firing(
        rule_id=rule_id,
        rule_location=snap.location(exit_event.get("Location")),
        message=msg[2] if msg and isinstance(msg[2], str) else None,
        conditions=conditions,
        facts=sorted(facts),
    )


def _opa_eval(binary: str, root: Path, query: str, doc: dict[str, Any], explain: bool) -> dict[str, Any]:
    """``opa eval`` with strict builtin errors, as the decision itself runs."""
    args = ["eval", "--format", "json", "--strict-builtin-errors", "--data", str(root), "--stdin-input"]
    if explain:
        args += ["--explain", "full"]
    proc = run_opa(binary, [*args, query], timeout_s=TRACE_TIMEOUT_S, stdin=json.dumps(doc))
    if proc.returncode != 0:
        raise EngineError("policy_error", f"opa eval failed: {output_text(proc)[:500]}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def opa_trace(
    engine: OpaEngine, binary: str, doc: dict[str, Any]
) -> tuple[list[Firing], dict[str, Any], dict[str, Any]]:
    """Evaluate ``doc`` with what ``engine`` holds under ``opa eval --explain full``.

    Returns the firings of annotated rules, the values of the facts they used, and
    the decision OPA computed in this run (to compare with the recorded one).
    """
    with tempfile.TemporaryDirectory(prefix="policygate-explain-") as tmp:
        snap = _Snapshot(engine, Path(tmp))
        out = _opa_eval(binary, Path(tmp), "data.policygate.decision", doc, explain=True)
        decision = ((out.get("result") or [{}])[0].get("expressions") or [{}])[0].get("value") or {}
        firings = _firings(out.get("explanation") or [], snap)
        names = sorted({f for firing in firings for f in firing.facts})
        facts: dict[str, Any] = {}
        if names:
            query = (
                "facts := {"
                + ", ".join(f"{json.dumps(n)}: [v | v := data.policygate[{json.dumps(n)}]]" for n in names)
                + "}"
            )
            values = _opa_eval(binary, Path(tmp), query, doc, explain=False)
            bindings = ((values.get("result") or [{}])[0].get("bindings") or {}).get("facts") or {}
            facts = {n: v[0] for n, v in bindings.items() if isinstance(v, list) and v}
    return firings, facts, decision
