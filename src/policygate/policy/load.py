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

Anything found refuses the whole directory, naming file, line and what is wrong. The steps live beside
this module: :mod:`~policygate.policy.stage` (the copy), :mod:`~policygate.policy.pipeline` (2 to 4),
:mod:`~policygate.policy.examples` (5); :mod:`~policygate.policy.report` holds what they found.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from policygate.config.paths import default_examples_dir
from policygate.engine.catalogue import ParsedRule, Rule, RuleLocator
from policygate.engine.errors import PARAMS_PATH, EngineError
from policygate.engine.managed import ManagedOpa
from policygate.engine.opa import OpaEngine
from policygate.engine.runner import CheckError
from policygate.policy import check_cache
from policygate.policy.examples import example_errors
from policygate.policy.pipeline import renamed, static_errors
from policygate.policy.report import LoadReport
from policygate.policy.stage import Staged, stage
from policygate.policy.testgate import test_errors


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
    staged = stage(policy_dir, report)
    if staged is None:
        return report, None
    kind = choose(engine)
    digest = _digest(binary, policy_dir, examples, staged, kind, timeout_s)
    passed = check_cache.recall(digest)
    if kind == "inprocess":
        checked, parsed = _load_inprocess(binary, policy_dir, examples, timeout_s, staged, report, passed)
    else:
        checked, parsed = _load_managed(binary, policy_dir, examples, timeout_s, staged, report, passed)
    report.remembered = passed is not None
    if checked is not None and passed is None:
        check_cache.remember(digest, parsed, report.rules)
    return report, checked


def _digest(
    binary: str, policy_dir: Path, examples: Path, staged: Staged, kind: str, timeout_s: float
) -> str:
    from policygate.engine.inproc import library_path

    library = library_path() if kind == "inprocess" else None
    return check_cache.key(staged.files, policy_dir, examples, binary, library, kind, timeout_s)


def _load_managed(
    binary: str,
    policy_dir: Path,
    examples: Path,
    timeout_s: float,
    staged: Staged,
    report: LoadReport,
    passed: tuple[list[ParsedRule], list[Rule]] | None,
) -> tuple[OpaEngine | None, list[ParsedRule]]:
    """:func:`load_policy` with a managed ``opa run`` server on the copy (``passed``: the remembered
    result of checks this exact directory passed, which then are not run again)."""
    files, data, root, copy, revision = staged.files, staged.data, staged.root, staged.copy, staged.revision
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
        if passed is None:
            testing = pool.submit(test_errors, binary, copy, files, floor, policy_dir)  # meanwhile too
        try:
            if passed is None:
                report.errors, parsed = static_errors(
                    binary, data, policy_dir, copy, staged.schema_file, staged.schema, report
                )
            else:
                parsed, report.rules = passed
        finally:
            started = starting.exception() is None
    try:
        if not report.errors:
            url = starting.result()  # raises the EngineError of a start that failed
            managed.owned_dir = root
            locator = RuleLocator(parsed, locator_names)
            engine = OpaEngine(url, timeout_s, managed, describe=locator.describe)
            engine.local = locator.local
            if passed is None:
                report.errors = [renamed(e, locator) for e in example_errors(engine, report.rules, examples)]
                report.errors += testing.result()
    except EngineError as exc:
        report.errors.append(CheckError(str(policy_dir), 0, 0, exc.code, exc.message))
    if engine is None and started:
        managed.stop()  # refused: the OPA that started alongside the checks goes (with the copy)
    if not report.ok or engine is None:
        if engine is not None:
            engine.close()  # also removes the copy
        shutil.rmtree(root, ignore_errors=True)
        return None, []
    report.revision = revision
    engine.note_revision(report.revision)
    engine.rule_ids = [r.id for r in report.rules]
    return engine, parsed


def _load_inprocess(
    binary: str,
    policy_dir: Path,
    examples: Path,
    timeout_s: float,
    staged: Staged,
    report: LoadReport,
    passed: tuple[list[ParsedRule], list[Rule]] | None,
) -> tuple[OpaEngine | None, list[ParsedRule]]:
    """:func:`load_policy` with the policy compiled into this process: the same checks (``opa check``,
    ``opa test``, each rule's examples), then the copy compiled as ``opa run`` would load it
    (``passed``: as for :func:`_load_managed`)."""
    from policygate.engine.inproc import InprocessEngine, compile_policy

    root, copy = staged.root, staged.copy
    floor = _floor(staged.data.merged.get(PARAMS_PATH))
    engine: OpaEngine | None = None
    tested: list[CheckError] = []
    try:
        if passed is not None:
            parsed, report.rules = passed
        else:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="opa-test") as pool:
                testing = pool.submit(test_errors, binary, copy, staged.files, floor, policy_dir)
                report.errors, parsed = static_errors(
                    binary,
                    staged.data,
                    policy_dir,
                    copy,
                    staged.schema_file,
                    staged.schema,
                    report,
                    inprocess=True,
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
            if passed is None:
                found = example_errors(engine, report.rules, examples, binary)
                report.errors = [renamed(e, locator) for e in found]
                report.errors += tested
    except EngineError as exc:
        report.errors.append(CheckError(str(policy_dir), 0, 0, exc.code, exc.message))
    if not report.ok or engine is None:
        if engine is not None:
            engine.close()
        shutil.rmtree(root, ignore_errors=True)
        return None, []
    report.revision = staged.revision
    engine.note_revision(staged.revision)
    engine.rule_ids = [r.id for r in report.rules]
    return engine, parsed


def _floor(params: Any) -> float | None:
    value = params.get("min_test_coverage") if isinstance(params, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def start_checked(
    binary: str, policy_dir: Path, examples_dir: Path | None, timeout_s: float, *, engine: str | None = None
) -> OpaEngine:
    """An OPA serving ``policy_dir`` once it passed every check (managed, or in process: ``engine``);
    refused: ``EngineError``."""
    report, checked = load_policy(binary, policy_dir, examples_dir, timeout_s=timeout_s, engine=engine)
    if checked is None:
        raise EngineError("policy_error", report.summary())
    return checked
