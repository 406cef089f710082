"""The one rule catalogue: every ``violation`` rule read from the modules themselves (``opa parse``),
with its ``# METADATA`` and where it sits, so a rule cannot disappear from the catalogue by lacking
an annotation, and an evaluation error can be traced to the rule it broke."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from policygate.engine.errors import EngineError
from policygate.engine.runner import output_text, run_opa

if TYPE_CHECKING:
    from policygate.engine.opa import OpaEngine

DECISION_PACKAGE = ["policygate"]


class Rule(BaseModel):
    """One rule of the catalogue, as ``GET /v1/policy`` and ``policy list --format json`` show it;
    ``mode`` is filled in from the parameters where known, ``file``/``row`` are for messages only."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    severity: str
    mode: str = Field(
        default="enforce", description="enforce (deny), warn (warning only) or dryrun (recorded, not shown)."
    )
    controls: list[str] = Field(default_factory=list)
    description: str = ""
    file: str = Field(default="", exclude=True)
    row: int = Field(default=0, exclude=True)


class Catalogue(BaseModel):
    policy_revision: str
    rules: list[Rule]

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


@dataclass(frozen=True)
class ParsedRule:
    """A rule as written: its head name, package, span and raw annotation (rule scope), if any."""

    name: str
    package: list[str]
    file: str
    row: int
    end_row: int
    annotation: dict[str, Any] | None
    body: Any
    raw: Any = None  # the whole rule as parsed: head, body and else branches
    # Views the load checks derive from ``raw`` (its calls, its ``every`` nodes), each walked once:
    # the checks ask for them per binding pass, and re-walking the AST was most of a cold start.
    derived: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_violation(self) -> bool:
        return self.name == "violation"

    def as_rule(self) -> Rule:
        return rule_of_annotation(self.annotation or {}, file=self.file, row=self.row)


def rule_of_annotation(ann: dict[str, Any], *, mode: str = "enforce", file: str = "", row: int = 0) -> Rule:
    """A catalogue rule from a rule's ``# METADATA`` (as ``opa parse`` or OPA's own AST gives it)."""
    custom = custom_of(ann)
    controls = custom.get("controls")
    return Rule(
        id=str(custom.get("id", "")),
        title=str(ann.get("title", "")),
        severity=str(custom.get("severity", "")),
        mode=mode,
        controls=[str(c) for c in controls] if isinstance(controls, list) else [],
        description=" ".join(str(ann.get("description", "")).split()),
        file=file,
        row=row,
    )


def custom_of(annotation: dict[str, Any]) -> dict[str, Any]:
    """The ``custom`` map of an annotation, empty when absent or not a map."""
    custom = annotation.get("custom")
    return custom if isinstance(custom, dict) else {}


def _term_values(terms: list[dict[str, Any]]) -> list[str]:
    return [str(t.get("value")) for t in terms if isinstance(t, dict)]


def _rule_of(raw: dict[str, Any], package: list[str], file: str) -> ParsedRule:
    loc = raw.get("location") or {}
    row = int(loc.get("row", 0) or 0)
    text = base64.b64decode(loc.get("text") or b"").decode(errors="replace")
    end = row + text.count("\n")
    node = raw
    while isinstance(node.get("else"), dict):  # an else chain belongs to the rule it extends
        node = node["else"]
        e_loc = node.get("location") or {}
        e_text = base64.b64decode(e_loc.get("text") or b"").decode(errors="replace")
        end = max(end, int(e_loc.get("row", 0) or 0) + e_text.count("\n"))
    head = raw.get("head") or {}
    ref = head.get("ref") or []
    name = str(head.get("name") or (ref[0].get("value") if ref else ""))
    anns = [a for a in raw.get("annotations") or [] if isinstance(a, dict)]
    return ParsedRule(name, package, file, row, end, anns[0] if anns else None, raw.get("body"), raw)


def parse_modules(
    binary: str, files: list[Path], *, inprocess: bool = False
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """``opa parse`` of each file (in parallel): ({file: AST}, errors). ``inprocess``: by the
    library (:func:`policygate.engine.inproc.parse_files`, the same AST, no process per file); only
    a file it cannot parse goes to the binary, whose error message is the one shown."""
    asts: dict[str, dict[str, Any]] = {}
    if inprocess:
        from policygate.engine.inproc import parse_files  # (inproc imports this module)

        asts, files = parse_files(files)

    def one(path: Path) -> tuple[str, dict[str, Any] | None, str | None]:
        proc = run_opa(
            binary, ["parse", "--format", "json", "--json-include", "locations,-comments", str(path)]
        )
        if proc.returncode != 0:
            return str(path), None, output_text(proc)
        try:
            return str(path), orjson.loads(proc.stdout), None
        except orjson.JSONDecodeError as exc:
            return str(path), None, f"opa parse gave no JSON: {exc}"

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, files))
    asts.update({f: ast for f, ast, _ in results if ast is not None})
    return asts, [f"{f}: {err}" for f, _, err in results if err]


def rules_of(asts: dict[str, dict[str, Any]], rename: dict[str, str] | None = None) -> list[ParsedRule]:
    """Every rule of the parsed modules, in file and line order, named by the files the author edits."""
    local = RuleLocator([], rename).local
    rules = []
    for file, ast in sorted(asts.items()):
        package = _term_values((ast.get("package") or {}).get("path") or [])[1:]
        for raw in ast.get("rules") or []:
            if isinstance(raw, dict):
                rules.append(_rule_of(raw, package, local(file)))
    return rules


class RuleLocator:
    """Names the violation rule an evaluation error happened in, from OPA's stack trace."""

    def __init__(self, rules: list[ParsedRule], rename: dict[str, str] | None = None) -> None:
        self.rules = rules
        self.rename = rename or {}  # the file OPA loaded -> the file the author edits

    def local(self, file: str) -> str:
        for loaded, edited in self.rename.items():
            for prefix in (loaded, loaded.lstrip("/")):  # OPA's module ids drop the leading slash
                if prefix and file.startswith(prefix):
                    rest = file[len(prefix) :]
                    # a module of a bundle directory is named <bundle>/<file as given>: the directory twice
                    for again in (loaded, loaded.lstrip("/")):
                        if again and rest.startswith(again):
                            rest = rest[len(again) :]
                            break
                    return edited + rest
        return file

    def enclosing(self, file: str, row: int) -> ParsedRule | None:
        file = self.local(file)
        for rule in self.rules:
            if rule.file == file and rule.row <= row <= rule.end_row:
                return rule
        return None

    def describe(self, errors: list[dict[str, Any]]) -> str:
        """``rule LIN-003 (file:line): message at file:line`` for each error; plain when no rule is found."""
        parts = []
        for err in errors:
            loc = err.get("location") or {}
            where = f"{self.local(str(loc.get('file', '')))}:{loc.get('row', '')}"
            text = f"{err.get('code', 'eval_error')}: {err.get('message', '') or '(no message)'} at {where}"
            frames = [f.get("location") or {} for f in err.get("stack_trace") or [] if isinstance(f, dict)]
            frames = frames or [loc]
            for frame in frames:
                rule = self.enclosing(str(frame.get("file", "")), int(frame.get("row", 0) or 0))
                if rule is not None and rule.is_violation:
                    r = rule.as_rule()
                    text = f"rule {r.id or '(no id)'} ({r.file}:{r.row}) failed: {text}"
                    break
            parts.append(text)
        return "; ".join(parts)


def rules_in(binary: str, policy_dir: Path) -> list[Rule]:
    """The catalogue's rules as written in a policy directory (no OPA started, nothing checked)."""
    modules = sorted(p for p in policy_dir.rglob("*.rego") if not p.name.endswith("_test.rego"))
    asts, errors = parse_modules(binary, modules)
    if errors:
        raise EngineError("policy_error", "; ".join(errors))
    return violation_rules(rules_of(asts))


def violation_rules(rules: list[ParsedRule]) -> list[Rule]:
    """The catalogue's rules: the violation rules of the decision package, sorted by id."""
    found = [r.as_rule() for r in rules if r.is_violation and r.package == DECISION_PACKAGE]
    return sorted(found, key=lambda r: (r.id, r.file, r.row))


def annotated_rules(engine: OpaEngine) -> list[dict[str, Any]]:
    """``# METADATA`` of every rule with a ``custom.id``, from the modules OPA holds (tests excluded)."""
    found: dict[str, dict[str, Any]] = {}
    for module in engine.policies():
        if str(module.get("id", "")).endswith("_test.rego"):
            continue
        ast = module.get("ast") or {}
        for ann in ast.get("annotations") or []:
            custom = ann.get("custom") or {}
            rule_id = custom.get("id")
            if isinstance(rule_id, str) and rule_id and rule_id not in found:
                found[rule_id] = ann
    return [found[k] for k in sorted(found)]


__all__ = [
    "Catalogue",
    "ParsedRule",
    "Rule",
    "RuleLocator",
    "annotated_rules",
    "parse_modules",
    "rules_of",
]
