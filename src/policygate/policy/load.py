"""Load a policy directory the only way policygate loads one: checked, then served from a private copy.

Every place that loads policies (``evaluate``, ``check``, ``serve`` start-up, a ``serve --watch``
reload, a ``replay --policy-dir`` candidate, ``policy check|test``) goes through :func:`load_policy`:

1. the files are read once and copied to a private directory, so what was checked is what OPA loads;
2. JSON data parses; ``opa check --strict --schema`` (the evidence schema) compiles, with strict lints
   and type errors for misspelled ``input.…`` paths;
3. every ``violation`` rule has complete metadata and a unique id; literal evidence paths
   (``ev([...])``, ``object.get(input, ...)``) exist in the evidence schema;
4. ``data.policygate_params`` matches its schema (:mod:`policygate.policy.params`);
5. an OPA started on the copy denies each rule's example document with that rule (and evaluates
   every example without a builtin error).

Anything found refuses the whole directory, naming file, line and what is wrong.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from policygate.engine import runner
from policygate.engine.catalogue import (
    ParsedRule,
    Rule,
    RuleLocator,
    parse_modules,
    rules_of,
    violation_rules,
)
from policygate.engine.opa import PARAMS_PATH, EngineError, ManagedOpa, OpaEngine
from policygate.engine.result import PolicyResult
from policygate.engine.revision import revision_of
from policygate.engine.runner import CheckError
from policygate.evidence import EvidenceV1, json_schema
from policygate.policy.capabilities import allowed_of, explained, now_errors, write_capabilities
from policygate.policy.checks import (
    head_errors,
    input_path_errors,
    metadata_errors,
    redefinition_errors,
    test_file_rule_errors,
)
from policygate.policy.custom_params import (
    custom_errors,
    declarations,
    read_errors,
    sprintf_errors,
)
from policygate.policy.data import PolicyData, merge_data, parse_data, reserved_errors
from policygate.policy.evidence_reads import evidence_default_errors
from policygate.policy.params import check_params
from policygate.policy.testgate import test_errors

# What ``opa run DIR`` loads: Rego modules and JSON/YAML data files.
LOADED = (".rego", ".json", ".yaml", ".yml")
COMPLIANT = "compliant.json"

Files = dict[str, bytes]


def default_examples_dir(policy_dir: Path) -> Path:
    """Where a policy directory's example documents live unless configured: ``../examples/evidence``."""
    return policy_dir.resolve().parent / "examples" / "evidence"


@dataclass
class LoadReport:
    """The outcome of loading one policy directory; ``ok`` means it may decide."""

    policy_dir: str
    examples_dir: str
    errors: list[CheckError] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    revision: str | None = None
    files: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy_dir": self.policy_dir,
            "examples_dir": self.examples_dir,
            "ok": self.ok,
            "revision": self.revision,
            "files": self.files,
            "rules": [r.id for r in self.rules],
            "errors": [asdict(e) for e in self.errors],
        }

    def summary(self) -> str:
        """One line for an error decision or /readyz: the first problems, with file and line."""
        shown = "; ".join(str(e) for e in self.errors[:5])
        more = (
            f" (and {len(self.errors) - 5} more: run `policygate policy check`)"
            if len(self.errors) > 5
            else ""
        )
        return f"policy refused ({self.policy_dir}): {shown}{more}"


def snapshot(policy_dir: Path) -> Files:
    """Every file OPA loads from the directory, by path, with its bytes."""
    files: Files = {}
    for root, dirs, names in os.walk(policy_dir):
        dirs.sort()
        for name in sorted(names):
            if name.endswith(LOADED):
                path = os.path.join(root, name)
                try:
                    files[path] = Path(path).read_bytes()
                except OSError:  # removed between listing and reading: the next poll sees it gone
                    continue
    return files


def json_errors(files: Files) -> list[CheckError]:
    """Data files (JSON or YAML) that do not parse, with line and column (OPA names only the file)."""
    return parse_data(files, Path("/"))[1] if files else []


def policy_data(files: Files, policy_dir: Path) -> tuple[PolicyData, list[CheckError]]:
    """Every data file of the directory merged as OPA merges it; errors: unparsable files,
    conflicting keys (naming both files), data under a root the service writes."""
    parsed, errors = parse_data(files, policy_dir)
    data, conflicts = merge_data(parsed)
    return data, errors + conflicts + reserved_errors(data)


_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][A-Za-z0-9_]*)", re.M)
_DECISION_PACKAGE = re.compile(r"^\s*package\s+policygate\s*$", re.M)


def bundle_layout(files: Files, policy_dir: Path) -> dict[str, bytes]:
    """The policy directory's files as an OPA bundle holds them (relative path -> bytes). Loaded as
    files, OPA puts every JSON or YAML file's data at its directory's path, whatever its name; a
    bundle reads only ``data.json``/``data.yaml``. So each directory's data files are merged into one
    ``data.json`` there (a key two of them set differently is refused, as OPA refuses it); modules,
    and data files that do not parse (the checks name those), are kept as they are."""
    layout: dict[str, bytes] = {}
    data: dict[Path, list[tuple[Path, Any]]] = {}
    for path, content in sorted(files.items()):
        relative = Path(path).relative_to(policy_dir)
        if relative.suffix != ".rego":
            try:
                doc = json.loads(content) if relative.suffix == ".json" else yaml.safe_load(content)
            except (ValueError, yaml.YAMLError):
                pass
            else:
                data.setdefault(relative.parent, []).append((relative, doc))
                continue
        layout[relative.as_posix()] = content
    for directory, docs in data.items():
        merged = docs[0][1]
        for relative, doc in docs[1:]:
            merged = _merged(merged, doc, relative)
        layout[(directory / "data.json").as_posix()] = json.dumps(merged).encode()
    return layout


def _merged(a: Any, b: Any, where: Path) -> Any:
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for key, value in b.items():
            out[key] = _merged(a[key], value, where) if key in a else value
        return out
    if a == b:
        return a
    raise ValueError(f"{where}: sets data another file in its directory sets differently")


def bundle_roots(layout: dict[str, bytes]) -> list[str]:
    """The data roots a bundle's files occupy (each module's first package segment, each data file's
    directory, or at the top the keys of its data), so the bundle owns those and nothing else: the
    waivers stay writable beside it."""
    roots: set[str] = set()
    for relative, content in layout.items():
        parts = relative.split("/")
        if relative.endswith(".rego"):
            roots.update(_PACKAGE.findall(content.decode("utf-8", "replace"))[:1])
        elif len(parts) > 1:
            roots.add(parts[0])
        elif relative == "data.json":
            with contextlib.suppress(ValueError):  # does not parse: the checks refuse it, naming it
                doc = json.loads(content)
                roots.update(doc if isinstance(doc, dict) else [])
    return sorted(roots)


def revision_of_files(files: Files, data: PolicyData) -> str:
    """The revision of the modules and of all the data OPA loads (the parameters as merged, and any
    other data document beside them)."""
    return revision_of(
        ((p, c.decode("utf-8", errors="replace")) for p, c in files.items() if p.endswith(".rego")),
        data.merged.get(PARAMS_PATH),
        data.without(PARAMS_PATH),
    )


def revision_of_dir(policy_dir: Path) -> str:
    """The policy revision of the files as they are now (what a load of them would report)."""
    files = snapshot(policy_dir)
    return revision_of_files(files, policy_data(files, policy_dir)[0])


def load_policy(
    binary: str,
    policy_dir: Path,
    examples_dir: Path | None = None,
    *,
    timeout_s: float = 5.0,
    engine: str | None = None,
) -> tuple[LoadReport, OpaEngine | None]:
    """Check ``policy_dir`` and start an OPA on a private copy of it: (report, engine when ok).

    ``engine``: ``inprocess`` compiles the copy into this process instead of starting an OPA server
    (the checks are the same; None: ``POLICYGATE_ENGINE``, :func:`policygate.engine.inproc.choose`).
    The caller owns the engine (``close()`` stops its OPA and removes the copy).
    """
    from policygate.engine.inproc import choose

    examples = examples_dir or default_examples_dir(policy_dir)
    report = LoadReport(str(policy_dir), str(examples))
    staged = _stage(policy_dir, report)
    if staged is None:
        return report, None
    if choose(engine) == "inprocess":
        return _load_inprocess(binary, policy_dir, examples, timeout_s, staged, report)
    return _load_managed(binary, policy_dir, examples, timeout_s, staged, report)


def _load_managed(
    binary: str, policy_dir: Path, examples: Path, timeout_s: float, staged: _Staged, report: LoadReport
) -> tuple[LoadReport, OpaEngine | None]:
    """:func:`load_policy` with a managed ``opa run`` server on the copy."""
    files, data, root, copy = staged.files, staged.data, staged.root, staged.copy
    schema, schema_file, revision = staged.schema, staged.schema_file, staged.revision
    as_bundle = staged.as_bundle
    locator_names = {str(copy): str(policy_dir)}
    engine: OpaEngine | None = None
    # OPA starts on the copy while the static checks run (a CLI run waits for both, not one after
    # the other); it serves nothing until every check passed, and is stopped when one did not.
    # (the copy becomes the OPA's to remove only once it serves: a start that fails must not take
    # the files away from the checks still reading them)
    managed = ManagedOpa(binary, copy, private=True, bundle=as_bundle)
    floor = _floor(data.merged.get(PARAMS_PATH))
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="opa-start") as pool:
        starting = pool.submit(managed.start)
        testing = pool.submit(test_errors, binary, copy, files, floor, policy_dir)  # meanwhile too
        try:
            report.errors, parsed = _static_errors(
                binary, data, policy_dir, copy, schema_file, schema, report
            )
        finally:
            started = starting.exception() is None
    try:
        if not report.errors:
            url = starting.result()  # raises the EngineError of a start that failed
            managed.owned_dir = root
            locator = RuleLocator(parsed, locator_names)
            engine = OpaEngine(url, timeout_s, managed, describe=locator.describe)
            engine.local = locator.local
            report.errors = [_renamed(e, locator) for e in example_errors(engine, report.rules, examples)]
            report.errors += testing.result()
    except EngineError as exc:
        report.errors.append(CheckError(str(policy_dir), 0, 0, exc.code, exc.message))
    if engine is None and started:
        managed.stop()  # refused: the OPA that started alongside the checks goes (with the copy)
    if not report.ok or engine is None:
        if engine is not None:
            engine.close()  # also removes the copy
        shutil.rmtree(root, ignore_errors=True)
        return report, None
    report.revision = revision
    engine.note_revision(report.revision)
    engine.rule_ids = [r.id for r in report.rules]
    return report, engine


@dataclass
class _Staged:
    """A policy directory read and copied, laid out as the bundle OPA loads (``copy``, in ``root``)."""

    files: Files
    data: PolicyData
    root: Path
    copy: Path
    schema: dict[str, Any]
    schema_file: Path
    revision: str
    as_bundle: bool


def _stage(policy_dir: Path, report: LoadReport) -> _Staged | None:
    """Read ``policy_dir`` and write the copy OPA loads; None (errors in ``report``) when unreadable."""
    if not (policy_dir / "policygate").is_dir():
        report.errors.append(
            CheckError(
                str(policy_dir), 0, 0, "policy_dir", f"{policy_dir} has no policygate/ package directory"
            )
        )
        return None
    files = snapshot(policy_dir)
    report.files = len(files)
    data, data_errors = policy_data(files, policy_dir)
    if data_errors:
        report.errors = data_errors
        return None
    root = Path(tempfile.mkdtemp(prefix="policygate-policy-"))
    copy = root / (policy_dir.name or "policy")
    layout = bundle_layout(files, policy_dir)
    for relative, content in layout.items():  # what OPA loads, as a bundle
        target = copy / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    schema = json_schema()
    schema_file = root / "evidence.schema.json"
    schema_file.write_text(json.dumps(schema))
    # OPA loads the copy as a bundle whose manifest carries the policy revision: each query's
    # provenance then names the revision that answered it, across hot reloads too
    revision = revision_of_files(files, data)
    roots = bundle_roots(layout)
    # (a directory with OPA's own `system` package would overlap the authorization rule's root: it
    # is loaded as files, as before, and its revision read beside each query)
    as_bundle = "system" not in roots
    if as_bundle:
        (copy / ".manifest").write_text(json.dumps({"revision": revision, "roots": roots}))
    return _Staged(files, data, root, copy, schema, schema_file, revision, as_bundle)


def _load_inprocess(
    binary: str, policy_dir: Path, examples: Path, timeout_s: float, staged: _Staged, report: LoadReport
) -> tuple[LoadReport, OpaEngine | None]:
    """:func:`load_policy` with the policy compiled into this process: the same checks (``opa check``,
    ``opa test``, each rule's examples), then the copy compiled as ``opa run`` would load it."""
    from policygate.engine.inproc import InprocessEngine, compile_policy

    root, copy = staged.root, staged.copy
    floor = _floor(staged.data.merged.get(PARAMS_PATH))
    engine: OpaEngine | None = None
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="opa-test") as pool:
            testing = pool.submit(test_errors, binary, copy, staged.files, floor, policy_dir)
            report.errors, parsed = _static_errors(
                binary, staged.data, policy_dir, copy, staged.schema_file, staged.schema, report
            )
            tested = testing.result()
        if not report.errors:
            capabilities = root / "capabilities.json"
            policy = compile_policy(
                copy, bundle=staged.as_bundle, capabilities=capabilities if capabilities.is_file() else None
            )
            locator = RuleLocator(parsed, {str(copy): str(policy_dir)})
            # the copy stays while the engine does: it is the revision's record (policy.revisions)
            engine = InprocessEngine(
                policy,
                timeout_s,
                describe=locator.describe,
                files=copy,
                on_close=lambda: shutil.rmtree(root, ignore_errors=True),
            )
            engine.local = locator.local
            report.errors = [_renamed(e, locator) for e in example_errors(engine, report.rules, examples)]
            report.errors += tested
    except EngineError as exc:
        report.errors.append(CheckError(str(policy_dir), 0, 0, exc.code, exc.message))
    if not report.ok or engine is None:
        if engine is not None:
            engine.close()
        shutil.rmtree(root, ignore_errors=True)
        return report, None
    report.revision = staged.revision
    engine.note_revision(staged.revision)
    engine.rule_ids = [r.id for r in report.rules]
    return report, engine


def _floor(params: Any) -> float | None:
    value = params.get("min_test_coverage") if isinstance(params, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _renamed(error: CheckError, locator: RuleLocator) -> CheckError:
    return CheckError(locator.local(error.file), error.row, error.col, error.code, error.message)


def _static_errors(
    binary: str,
    data: PolicyData,
    policy_dir: Path,
    copy: Path,
    schema_file: Path,
    schema: dict[str, Any],
    report: LoadReport,
) -> tuple[list[CheckError], list[ParsedRule]]:
    """Everything checked before an OPA starts: (errors, every rule as parsed)."""
    locator = RuleLocator([], {str(copy): str(policy_dir)})
    params = data.merged.get(PARAMS_PATH)
    allowed = allowed_of(params)
    capabilities = write_capabilities(binary, schema_file.with_name("capabilities.json"), allowed)
    checked = runner.check(binary, [copy], strict=True, schema=schema_file, capabilities=capabilities)
    errors = [explained(_renamed(e, locator), allowed) for e in checked]
    if errors:
        return errors, []
    modules = sorted(p for p in copy.rglob("*.rego") if not p.name.endswith("_test.rego"))
    # test files in the decision package too: a rule written there would silently not be policy
    tests = sorted(p for p in copy.rglob("*_test.rego") if _DECISION_PACKAGE.search(p.read_text()))
    asts, parse_errors = parse_modules(binary, modules + tests)
    if parse_errors:
        return [CheckError(str(policy_dir), 0, 0, "opa_parse_failed", e) for e in parse_errors], []
    everything = rules_of(asts, locator.rename)
    parsed = [r for r in everything if not r.file.endswith("_test.rego")]
    errors = (
        metadata_errors(parsed)
        + head_errors(parsed)
        + redefinition_errors(parsed)
        + test_file_rule_errors(everything)
        + input_path_errors(parsed, schema)
        + now_errors(parsed, allowed)
        + evidence_default_errors(parsed, schema)
        + sprintf_errors(parsed)
    )
    declared, declaration_errors = declarations(parsed)
    errors += declaration_errors + custom_errors(data, declared) + read_errors(parsed, declared)
    rules = violation_rules(parsed)
    for err in check_params(params, str(policy_dir / "data.json"), {r.id for r in rules}):
        err.file, err.row = data.where(_params_key(err.message)) if params is not None else (err.file, 0)
        errors.append(err)
    if not errors and params is not None:
        modes = params.get("modes") or {}
        rules = [r.model_copy(update={"mode": modes.get(r.id, "enforce")}) for r in rules]
    report.rules = rules
    return [_renamed(e, locator) for e in errors], parsed


def _params_key(message: str) -> tuple[str, ...]:
    """The data path a parameter problem names (``policygate_params.a.b: ...``)."""
    return tuple(message.split(": ", 1)[0].split("."))


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


def example_errors(engine: OpaEngine, rules: list[Rule], examples: Path) -> list[CheckError]:
    """Each rule denies its examples (``<ID>.json``, ``<ID>.deny-*.json``) and not its allow examples
    (``<ID>.allow-*.json``); an example of an id no rule has is refused; no example evaluates with an
    error."""
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
                        + _first_failed(engine, rule, doc),
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


def _first_failed(engine: OpaEngine, rule: Rule, doc: dict[str, Any]) -> str:
    """The first condition of the rule that did not hold on ``doc`` (from OPA's explain trace)."""
    from policygate.policy.why_not import first_failed

    managed = engine.managed
    if managed is None:
        return ""
    return first_failed(managed.binary, managed.policy_dir, rule.file, rule.row, doc, engine.local)


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


def start_checked(
    binary: str, policy_dir: Path, examples_dir: Path | None, timeout_s: float, *, engine: str | None = None
) -> OpaEngine:
    """An OPA serving ``policy_dir`` once it passed every check (managed, or in process: ``engine``);
    refused: ``EngineError``."""
    report, checked = load_policy(binary, policy_dir, examples_dir, timeout_s=timeout_s, engine=engine)
    if checked is None:
        raise EngineError("policy_error", report.summary())
    return checked
