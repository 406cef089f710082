"""Why a decision went the way it did, for a person who does not read Rego.

For each reason (deny, warning, dry-run finding) the explanation gives the rule's
id, title and description, the message, the enforcement mode (and waiver), and the
evidence fields the rule read (``reason.fields``) with their values.

It then asks OPA itself: the policies and data the server holds are evaluated once
more with ``opa eval --explain full`` on the same input, and from OPA's trace each
firing rule's path is taken: the conditions that held (source text and line), the
variables they bound, and the values of the policy facts they used (e.g.
``required_approvals = 2``). The recorded decision is not touched: the
explanation is an optional addition to the answer.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from policygate.decisions.model import Decision, Reason
from policygate.engine.opa import EngineError, OpaEngine
from policygate.engine.runner import output_text, run_opa
from policygate.policy.authoring import annotated_rules

TRACE_TIMEOUT_S = 30.0
_SKIP_BINDINGS = {"msg", "fields"}  # the message and field list a rule builds: shown elsewhere
_BINDING = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:=")


class FieldValue(BaseModel):
    path: str
    present: bool = Field(description="False when the evidence has no value at this path.")
    value: Any = None
    gap: bool = Field(default=False, description="The sources reported this field missing.")


class Condition(BaseModel):
    expression: str = Field(description="A condition of the rule that held, as written in the policy.")
    location: str
    bindings: dict[str, Any] = Field(default_factory=dict, description="Variables it bound.")


class ReasonExplanation(BaseModel):
    kind: Literal["deny", "warn", "dryrun", "error"]
    id: str
    title: str | None = None
    description: str | None = None
    severity: str
    mode: str = Field(description="enforce, warn or dryrun (a waived deny is enforce with a waiver).")
    waiver: str | None = None
    message: str
    fields: list[FieldValue] = Field(default_factory=list)
    rule_location: str | None = None
    conditions: list[Condition] = Field(default_factory=list)
    facts: dict[str, Any] = Field(
        default_factory=dict, description="Values of the policy facts the conditions used."
    )


class Explanation(BaseModel):
    outcome: str
    summary: str
    reasons: list[ReasonExplanation] = Field(default_factory=list)
    rules_checked: list[str] = Field(default_factory=list)
    trace: str | None = Field(default=None, description="How OPA's own explanation was obtained.")
    notes: list[str] = Field(default_factory=list)


# ---------------------------------------------------------------------------
# Evidence values
# ---------------------------------------------------------------------------

_MISSING = object()


def lookup(doc: Any, path: str) -> Any:
    """The value at a dotted path, or _MISSING (a null value counts as missing too)."""
    node = doc
    for key in path.split("."):
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return _MISSING
    return _MISSING if node is None else node


def field_values(doc: dict[str, Any], paths: list[str]) -> list[FieldValue]:
    gaps = set(((doc.get("collection") or {}).get("gaps")) or [])
    out = []
    for path in paths:
        value = lookup(doc, path)
        present = value is not _MISSING
        out.append(FieldValue(path=path, present=present, value=value if present else None, gap=path in gaps))
    return out


# ---------------------------------------------------------------------------
# OPA's trace
# ---------------------------------------------------------------------------


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
    """Names of the package's rules a compiled expression reads as values (not called)."""
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
        if parts[:head] == ["data", *package] and isinstance(name, str):
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


class _Firing(BaseModel):
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
            if module_id.endswith("_test.rego"):
                continue
            raw = str(module.get("raw", ""))
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


def _firings(trace: list[dict[str, Any]], snap: _Snapshot) -> list[_Firing]:
    paths: dict[int, dict[int, dict[str, Any]]] = {}
    out: list[_Firing] = []
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
) -> _Firing:
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
    return _Firing(
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
) -> tuple[list[_Firing], dict[str, Any], dict[str, Any]]:
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


# ---------------------------------------------------------------------------
# Putting it together
# ---------------------------------------------------------------------------


def _mode(kind: str, reason: Reason) -> str:
    if kind == "warn" and not reason.waiver:
        return "warn"
    return "dryrun" if kind == "dryrun" else "enforce"


def _summary(decision: Decision) -> str:
    subject = (decision.subject or {}).get("ref") or "the model"
    stage = (decision.target or {}).get("stage") or "its target"
    extra = []
    if decision.warnings:
        waived = sum(1 for w in decision.warnings if w.waiver)
        extra.append(f"{len(decision.warnings)} warning(s)" + (f", {waived} waived" if waived else ""))
    if decision.dryrun:
        extra.append(f"{len(decision.dryrun)} dry-run finding(s) not enforced yet")
    tail = f" ({'; '.join(extra)})" if extra else ""
    if decision.outcome == "error":
        return (
            f"Could not decide on {subject} -> {stage}: "
            + "; ".join(r.message for r in decision.reasons)
            + ". The gate fails closed: treat this as a deny."
        )
    if decision.outcome == "allow":
        return f"{subject} may go to {stage}: no enforced rule denied it{tail}."
    rules = ", ".join(f"{r.id} ({r.title or r.message[:40]})" for r in decision.reasons)
    return f"{subject} may not go to {stage}: denied by {rules}{tail}."


def explain(
    decision: Decision,
    doc: dict[str, Any] | None,
    engine: OpaEngine | None,
    binary: str | None,
) -> Explanation:
    """The explanation of a decision made on ``doc`` by the policies ``engine`` holds."""
    doc = doc or {}
    out = Explanation(
        outcome=decision.outcome, summary=_summary(decision), rules_checked=decision.rules_checked
    )
    if decision.outcome == "error":
        out.reasons = [
            ReasonExplanation(kind="error", id=r.id, severity=r.severity, mode="enforce", message=r.message)
            for r in decision.reasons
        ]
        return out
    anns: dict[str, dict[str, Any]] = {}
    firings: list[_Firing] = []
    facts: dict[str, Any] = {}
    if engine is not None:
        try:
            anns = {a["custom"]["id"]: a for a in annotated_rules(engine)}
        except EngineError as exc:
            out.notes.append(f"rule descriptions unavailable: {exc.message}")
        if binary:
            try:
                firings, facts, traced = opa_trace(engine, binary, doc)
                out.trace = "opa eval --explain full on the policies and data the OPA server holds"
                if sorted(r.get("id", "") for r in traced.get("deny") or []) != sorted(
                    r.id for r in decision.reasons
                ):
                    out.notes.append(
                        "OPA's trace run reached different denials than the recorded decision "
                        "(the policies or waivers changed since it was made)"
                    )
            except (EngineError, ValueError, KeyError, IndexError, TypeError) as exc:
                out.notes.append(f"OPA trace unavailable: {exc}")
    unused = list(firings)
    for kind, reasons in (
        ("deny", decision.reasons),
        ("warn", decision.warnings),
        ("dryrun", decision.dryrun),
    ):
        for r in reasons:
            firing = _match(r, unused)
            ann = anns.get(r.id) or {}
            out.reasons.append(
                ReasonExplanation(
                    kind=kind,  # type: ignore[arg-type]
                    id=r.id,
                    title=r.title or ann.get("title"),
                    description=" ".join(str(ann.get("description", "")).split()) or None,
                    severity=r.severity,
                    mode=_mode(kind, r),
                    waiver=r.waiver,
                    message=r.message,
                    fields=field_values(doc, r.fields),
                    rule_location=firing.rule_location if firing else None,
                    conditions=firing.conditions if firing else [],
                    facts={k: facts[k] for k in (firing.facts if firing else []) if k in facts},
                )
            )
    return out


def _match(reason: Reason, firings: list[_Firing]) -> _Firing | None:
    same = [f for f in firings if f.rule_id == reason.id]
    pick = next((f for f in same if f.message and reason.message.startswith(f.message)), None)
    pick = pick or (same[0] if same else None)
    if pick is not None:
        firings.remove(pick)
    return pick


# ---------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(explanation: Explanation) -> str:
    lines = ["", "WHY", f"  {explanation.summary}"]
    labels = {"deny": "DENY", "warn": "WARN", "dryrun": "DRY-RUN", "error": "ERROR"}
    for r in explanation.reasons:
        head = f"{labels[r.kind]} {r.id}"
        if r.title:
            head += f" — {r.title}"
        mode = r.mode + (f", waived by {r.waiver}" if r.waiver else "")
        lines += ["", f"  {head}  [severity {r.severity}; mode {mode}]"]
        if r.description:
            lines.append(f"    Rule: {r.description}")
        lines.append(f"    Finding: {r.message}")
        if r.fields:
            lines.append("    Evidence it read:")
            width = max(len(f.path) for f in r.fields)
            for f in r.fields:
                gap = "  [reported missing by the sources]" if f.gap else ""
                if isinstance(f.value, list) and f.value and any(isinstance(v, dict) for v in f.value):
                    lines.append(f"      {f.path:<{width}} = {len(f.value)} item(s):{gap}")
                    lines += [f"      {'':<{width}}   - {_short(v)}" for v in f.value[:20]]
                    continue
                value = _short(f.value) if f.present else "(missing)"
                lines.append(f"      {f.path:<{width}} = {value}{gap}")
        if r.conditions:
            where = f" ({r.rule_location})" if r.rule_location else ""
            lines.append(f"    Conditions that held, from OPA's trace{where}:")
            for c in r.conditions:
                lines.append(f"      {c.expression}")
                for name, value in c.bindings.items():
                    lines.append(f"          {name} = {_short(value)}")
        if r.facts:
            lines.append("    Policy facts used:")
            for name, value in r.facts.items():
                lines.append(f"      {name} = {_short(value)}")
    for note in explanation.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)
