"""Each rule shown to fire: its example documents (``ID.json``, ``ID.deny-*.json``, ``ID.allow-*.json``,
``compliant.json``) evaluated by the OPA serving the checked copy."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from policygate.engine.catalogue import Rule
from policygate.engine.errors import EngineError
from policygate.engine.opa import OpaEngine
from policygate.engine.result import PolicyResult
from policygate.engine.runner import CheckError
from policygate.evidence import EvidenceV1

COMPLIANT = "compliant.json"
EXAMPLE_NAME = re.compile(r"^(?P<id>[A-Z]{2,5}-[0-9]{3})(?:\.(?P<kind>deny|allow)-[A-Za-z0-9_.-]+)?\.json$")


def rule_examples(examples: Path) -> tuple[dict[str, list[tuple[Path, bool]]], list[CheckError]]:
    """Each rule id's example documents, (path, must fire): ``ID.json`` and ``ID.deny-*.json`` must,
    ``ID.allow-*.json`` must not; errors: example files of no recognised name."""
    found: dict[str, list[tuple[Path, bool]]] = defaultdict(list)
    errors = []
    for path in sorted(examples.glob("*.json")) if examples.is_dir() else []:
        if path.name == COMPLIANT:
            continue
        match = EXAMPLE_NAME.match(path.name)
        if match is None:
            errors.append(
                CheckError(
                    str(path),
                    0,
                    0,
                    "rule_example",
                    f"{path.name} is not an example name policygate knows (ID.json, ID.deny-NAME.json, "
                    "ID.allow-NAME.json, compliant.json): it would never be checked",
                )
            )
            continue
        found[match["id"]].append((path, match["kind"] != "allow"))
    return found, errors


def example_errors(
    engine: OpaEngine, rules: list[Rule], examples: Path, binary: str | None = None
) -> list[CheckError]:
    """Each rule denies its examples (``<ID>.json``, ``<ID>.deny-*.json``) and not its allow examples
    (``<ID>.allow-*.json``); an example of an id no rule has is refused; no example evaluates with an
    error. ``binary``: the opa binary that explains a rule that does not fire, for an engine that
    is not a managed OPA (in process)."""
    errors = []
    compliant = examples / COMPLIANT
    if compliant.is_file():
        doc, problem = _example(compliant)
        if problem is None:
            try:
                PolicyResult.from_opa(engine.evaluate(doc))
            except EngineError as exc:
                problem = exc.message
        if problem is not None:
            errors.append(CheckError(str(compliant), 0, 0, "example_error", problem))
    by_id, errors_named = rule_examples(examples)
    errors += errors_named
    known = {rule.id for rule in rules}
    for rule_id in sorted(set(by_id) - known):
        for path, _ in by_id[rule_id]:
            errors.append(
                CheckError(
                    str(path),
                    0,
                    0,
                    "rule_example",
                    f"{path.name} is an example of {rule_id}, but no rule has this id (a rule written "
                    "with another head than `violation`, a typo in custom.id, or a rule removed?)",
                )
            )
    for rule in rules:
        where = (rule.file, rule.row, 1)
        path = examples / f"{rule.id}.json"
        if not path.is_file():
            errors.append(
                CheckError(
                    *where,
                    "rule_example",
                    f"{rule.id} has no example: add {path}, an evidence document this rule must deny "
                    "(a rule that cannot be shown to fire is refused)",
                )
            )
        for path, must_fire in by_id.get(rule.id, []):
            doc, problem = _example(path)
            if problem is not None:
                errors.append(CheckError(str(path), 0, 0, "rule_example", problem))
                continue
            try:
                result = PolicyResult.from_opa(engine.evaluate(doc))
            except EngineError as exc:
                errors.append(CheckError(*where, "rule_example", f"{rule.id} on {path.name}: {exc.message}"))
                continue
            fired = {r.id for r in [*result.deny, *result.warn, *result.dryrun]}
            if must_fire and rule.id not in fired:
                errors.append(
                    CheckError(
                        *where,
                        "rule_example",
                        f"{rule.id} does not fire on its example {path}: the rule (or the example) no "
                        f"longer matches; the example gave {sorted(fired) or 'no finding'}"
                        + _first_failed(engine, rule, doc, binary),
                    )
                )
            elif not must_fire and rule.id in fired:
                errors.append(
                    CheckError(
                        *where,
                        "rule_example",
                        f"{rule.id} fires on {path}, an example it must not deny (ID.allow-*.json)",
                    )
                )
    return errors


def _first_failed(engine: OpaEngine, rule: Rule, doc: dict[str, Any], binary: str | None) -> str:
    """The first condition of the rule that did not hold on ``doc`` (from OPA's explain trace of the
    copy the engine serves)."""
    from policygate.policy.why_not import first_failed

    managed = engine.managed
    loaded = managed.policy_dir if managed is not None else engine.policy_files
    binary = managed.binary if managed is not None else binary
    if binary is None or loaded is None:
        return ""
    return first_failed(binary, loaded, rule.file, rule.row, doc, engine.local)


def _example(path: Path) -> tuple[dict[str, Any], str | None]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return EvidenceV1.model_validate(doc).to_input(), None
    except (OSError, ValueError) as exc:
        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            return {}, f"not a valid evidence document at {where}: {first['msg']}"
        return {}, f"cannot read the example: {exc}"
