"""The in-process engine (OPA linked in, policygate.engine.inproc) decides exactly as an OPA server.

Differential: every example, and generated documents (fields mutated, types changed, paths missing),
evaluated by the managed ``opa run`` and by the library, give the same ``result`` JSON, or the same
error, strict-builtin failures included. Plus: many threads at once, a panic, a runaway evaluation.
"""

from __future__ import annotations

import copy
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policygate.decisions.log import DecisionLog
from policygate.engine.errors import DECIDE, EngineError
from policygate.engine.inproc import BATCH, InprocessEngine, compile_policy, library_path
from policygate.engine.opa import OpaEngine
from policygate.evidence import EvidenceV1
from policygate.runtime.engines import start_engine
from tests.support.checkout import EXAMPLES, ROOT, opa_binary, policy_copy, without_shipped_tests


def _library() -> None:
    if library_path() is None:
        pytest.fail("the in-process OPA is not built: run `make setup` (scripts/ensure-opa-inproc.sh)")


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OpaEngine, OpaEngine]]:
    """(the managed OPA server, the in-process OPA), both on one copy of rego/ after every load check."""
    _library()
    rego = policy_copy(tmp_path_factory.mktemp("engines"))
    http = start_engine(None, opa_binary(), rego, engine="http")
    inproc = start_engine(None, opa_binary(), rego, engine="inprocess")
    assert http.kind == "http" and inproc.kind == "inprocess"
    yield http, inproc
    http.close()
    inproc.close()


def outcome(engine: OpaEngine, doc: Any) -> Any:
    """What the engine answers: OPA's ``result`` JSON, or the error (its code and message)."""
    try:
        answer = engine._query(doc, DECIDE)
    except EngineError as exc:
        return ("error", exc.code, exc.message)
    return json.loads(json.dumps(answer.get("result", "<undefined>"), sort_keys=True))


def inputs() -> list[tuple[str, dict[str, Any]]]:
    return [
        (p.name, EvidenceV1.model_validate_json(p.read_text()).to_input())
        for p in sorted(EXAMPLES.glob("*.json"))
    ]


@pytest.mark.parametrize(("name", "doc"), inputs(), ids=[n for n, _ in inputs()])
def test_every_example_decides_the_same(
    name: str, doc: dict[str, Any], engines: tuple[OpaEngine, OpaEngine]
) -> None:
    http, inproc = engines
    expected = outcome(http, doc)
    assert isinstance(expected, dict), f"{name}: the OPA server gave no decision: {expected}"
    assert outcome(inproc, doc) == expected
    assert inproc.answer(doc).revision == http.answer(doc).revision  # the bundle's revision, both


_COMPLIANT = EvidenceV1.model_validate_json((EXAMPLES / "compliant.json").read_text()).to_input()


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield (*prefix, i)
            yield from _paths(value, (*prefix, i))


PATHS = sorted(_paths(_COMPLIANT), key=repr)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            "2026-02-30T00:00:00Z",
            "2026-13-45T99:00:00Z",
            "not a time",
            "1e309",
            "-0",
            "sha256:",
            "production",
            "NaN",
        ]
    ),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
MUTATION = st.tuples(st.sampled_from(PATHS), st.sampled_from(["set", "delete"]), VALUES)


def mutate(doc: dict[str, Any], mutations: list[tuple[tuple[Any, ...], str, Any]]) -> dict[str, Any]:
    """``doc`` with each (path, set|delete, value) applied where the path still exists."""
    out = copy.deepcopy(doc)
    for path, how, value in mutations:
        parent: Any = out
        try:
            for key in path[:-1]:
                parent = parent[key]
            last = path[-1]
            if how == "delete":
                del parent[last]
            else:
                parent[last] = value
        except (KeyError, IndexError, TypeError):
            continue
    return out


@settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(mutations=st.lists(MUTATION, min_size=1, max_size=4))
def test_generated_documents_decide_the_same(
    mutations: list[tuple[tuple[Any, ...], str, Any]], engines: tuple[OpaEngine, OpaEngine]
) -> None:
    http, inproc = engines
    doc = mutate(_COMPLIANT, mutations)
    assert outcome(inproc, doc) == outcome(http, doc)


def test_strict_builtin_errors_are_the_same_error(engines: tuple[OpaEngine, OpaEngine]) -> None:
    """A builtin error (an impossible date) stops the query on both, with the same message naming its rule."""
    http, inproc = engines
    doc = mutate(_COMPLIANT, [(("request", "requested_at"), "set", "2026-02-30T00:00:00Z")])
    expected = outcome(http, doc)
    assert expected[0] == "error", expected
    assert outcome(inproc, doc) == expected


def test_waivers_and_params_decide_the_same(tmp_path: Path) -> None:
    """The waivers (written at run time, as WaiverSync pushes them) and a changed parameter (in the
    policy's data.json, as policy authors change them) decide the same on both engines; both refuse a
    write into the policy bundle's own data."""
    _library()
    rego = without_shipped_tests(policy_copy(tmp_path))
    doc = EvidenceV1.model_validate_json((EXAMPLES / "OWN-001.json").read_text()).to_input()

    def both() -> tuple[OpaEngine, OpaEngine]:
        return (
            start_engine(None, opa_binary(), rego, engine="http"),
            start_engine(None, opa_binary(), rego, engine="inprocess"),
        )

    http, inproc = both()
    try:
        denied = outcome(http, doc)
        assert [r["id"] for r in denied["deny"]] == ["OWN-001"]
        waiver = {
            "id": "w-1",
            "rule": "OWN-001",
            "model": doc["subject"]["name"],
            "stage": doc["request"]["target"]["stage"],
            "expires_at": "2099-01-01T00:00:00Z",
            "reason": "a test",
        }
        for engine in (http, inproc):
            engine.put_data("policygate_waivers", [waiver])
        assert inproc.get_data("policygate_waivers") == http.get_data("policygate_waivers") == [waiver]
        assert outcome(inproc, doc) == outcome(http, doc)
        params = http.get_data("policygate_params")
        assert inproc.get_data("policygate_params") == params
        for engine in (http, inproc):
            with pytest.raises(EngineError, match="owned by bundle"):
                engine.put_data("policygate_params", {})
        assert inproc.policy_revision == http.policy_revision
    finally:
        http.close()
        inproc.close()
    data_file = rego / "data.json"
    data = json.loads(data_file.read_text())
    data["policygate_params"]["modes"] = {**data["policygate_params"].get("modes", {}), "OWN-001": "warn"}
    data_file.write_text(json.dumps(data))
    http, inproc = both()
    try:
        warned = outcome(inproc, doc)
        assert warned == outcome(http, doc)
        assert [r["id"] for r in warned["warn"]] == ["OWN-001"] and warned["deny"] == []
        assert inproc.policy_revision == http.policy_revision
    finally:
        http.close()
        inproc.close()


def test_many_threads_evaluate_at_once(engines: tuple[OpaEngine, OpaEngine]) -> None:
    """16 threads, 50 evaluations each, alternating documents: every answer is the right one."""
    _, inproc = engines
    docs = {name: doc for name, doc in inputs()}
    expected = {name: outcome(inproc, doc) for name, doc in docs.items()}
    names = sorted(docs)
    wrong: list[str] = []

    def work(offset: int) -> None:
        for i in range(50):
            name = names[(offset + i) % len(names)]
            if outcome(inproc, docs[name]) != expected[name]:
                wrong.append(name)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_a_go_panic_is_an_error_answer_not_a_crash() -> None:
    """The test hook ``pg_panic`` is only in a library built with ``-tags pgtesthooks``
    (``ensure-opa-inproc.sh --test-hooks``): the production library does not export it, and the
    test library answers the panic with an error (in a child process: one Go runtime per process)."""
    import ctypes
    import subprocess
    import sys

    _library()
    production = library_path()
    assert production is not None and not hasattr(ctypes.CDLL(str(production)), "pg_panic")
    script = ROOT / "scripts" / "ensure-opa-inproc.sh"
    subprocess.run([str(script), "--test-hooks"], check=True, capture_output=True, cwd=ROOT)
    hooks = ROOT / ".bin" / "libpolicygate_opa_testhooks.so"
    check = (
        "from policygate.engine.inproc import Library\n"
        "import json\n"
        "print(json.dumps(Library.load().call('pg_panic')))\n"
    )
    env = {**os.environ, "POLICYGATE_OPA_LIBRARY": str(hooks)}
    out = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, check=True)
    answer = json.loads(out.stdout)
    assert answer["status"] == 500 and answer["body"]["code"] == "internal_panic"
    assert "deliberate" in answer["body"]["message"]


@pytest.mark.parametrize("kind", ["inprocess", "http"])
def test_a_batch_decides_each_document_as_one_evaluation_does(
    kind: str, engines: tuple[OpaEngine, OpaEngine]
) -> None:
    """``evaluate_many`` (the batch path of replay and audit): the same decision for each document
    as ``evaluate``, in order, and a document that fails is that document's error only. More
    documents than one library call takes (``BATCH``) are split into chunks."""
    engine = dict(zip(("http", "inprocess"), engines, strict=True))[kind]
    broken = mutate(_COMPLIANT, [(("request", "requested_at"), "set", "2026-02-30T00:00:00Z")])
    docs = [doc for _, doc in inputs()] + [broken]
    docs = (docs * (BATCH // len(docs) + 2))[: BATCH + 7] if kind == "inprocess" else docs
    decided = engine.evaluate_many(docs, workers=4)
    assert len(decided) == len(docs)
    for doc, got in zip(docs, decided, strict=True):
        if doc is broken:
            assert isinstance(got, EngineError) and got.code == "policy_error"
            with pytest.raises(EngineError) as single:
                engine.evaluate(doc)
            assert got.message == single.value.message
        else:
            assert got == engine.evaluate(doc)
    assert engine.evaluate_many([]) == []


def test_a_runaway_evaluation_is_stopped_by_opa(tmp_path: Path) -> None:
    """A decision that loops over a huge range: OPA's own cancellation ends it at the timeout, and it
    is a ``policy_timeout`` error (never an answer, never a hung thread)."""
    _library()
    (tmp_path / "policygate").mkdir()
    (tmp_path / "policygate" / "main.rego").write_text(
        "package policygate\n\n"
        "spin := count([x | some x in numbers.range(1, 1000000000); x % 7 == 3])\n\n"
        'decision := {"allow": spin > 0, "deny": []}\n'
    )
    engine = InprocessEngine(compile_policy(tmp_path, bundle=False), timeout_s=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(EngineError) as err:
            engine.answer({})
        assert err.value.code == "policy_timeout"
        assert time.monotonic() - started < 5
    finally:
        engine.close()


@pytest.mark.parametrize("kind", ["inprocess", "http"])
def test_readyz_and_the_decision_record_name_the_engine(kind: str, tmp_path: Path) -> None:
    """``/readyz`` says which engine decides and each decision record which one decided; the outcome
    is the same."""
    from fastapi.testclient import TestClient

    from policygate.api.app import create_app
    from policygate.config import Settings

    _library()
    rego = policy_copy(tmp_path)
    db = f"sqlite:///{tmp_path}/decisions.db"
    settings = Settings(db_url=db, policy_dir=rego, opa_bin=opa_binary(), engine=kind)  # type: ignore[arg-type]
    evidence = json.loads((EXAMPLES / "OWN-001.json").read_text())
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz").json()
        assert ready["engine"] == kind and ready["ready"] is True
        decision = client.post("/v1/evaluate", json={"evidence": evidence}).json()
        assert decision["outcome"] == "deny" and [r["id"] for r in decision["reasons"]] == ["OWN-001"]
    log = DecisionLog(db)
    try:
        record = log.get(decision["decision_id"])
        assert record is not None and record["opa"]["engine"] == kind
    finally:
        log.close()


def _rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_results_are_freed_rss_stays_flat(engines: tuple[OpaEngine, OpaEngine]) -> None:
    """A short soak (docs/benchmarks.md has the long one): after a warm-up, more evaluations,
    decisions and errors alike (10,000), leave the resident set where it was (each answer is freed)."""
    _, inproc = engines
    doc = inputs()[0][1]
    broken = mutate(_COMPLIANT, [(("request", "requested_at"), "set", "2026-02-30T00:00:00Z")])
    for _ in range(1500):
        outcome(inproc, doc)
        outcome(inproc, broken)
    before = _rss_mb()
    for _ in range(5000):
        outcome(inproc, doc)
        outcome(inproc, broken)
    assert _rss_mb() - before < 16, f"RSS grew from {before:.0f} MB to {_rss_mb():.0f} MB"


def test_without_the_library_everything_runs_on_the_http_engine(tmp_path: Path) -> None:
    """A machine without Go (no library): ``auto`` is the HTTP engine and a CLI decision is made and
    recorded by an OPA server; asking for ``inprocess`` there is an error naming ``make setup``."""
    import subprocess
    import sys

    missing = str(tmp_path / "absent" / "libpolicygate_opa.so")
    env = {**os.environ, "POLICYGATE_OPA_LIBRARY": missing, "POLICYGATE_ENGINE": "auto"}
    assert _evaluate_engine(env, f"sqlite:///{tmp_path}/decisions.db", tmp_path) == "http"
    check = (
        "from policygate.engine.inproc import Library, choose\n"
        "from policygate.engine.opa import EngineError\n"
        "assert choose() == 'http' and choose('inprocess') == 'inprocess'\n"
        "try:\n    Library.load()\nexcept EngineError as exc:\n    print(exc.message)\n"
    )
    out = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, check=True)
    assert "make setup" in out.stdout and "POLICYGATE_ENGINE=http" in out.stdout


def test_the_load_checks_parse_in_process_the_same_ast_as_opa_parse(tmp_path: Path) -> None:
    """``policy.load``'s parse of every module, in process (``pg_parse``), is ``opa parse``'s AST
    exactly; a file that does not parse is parsed by the binary, whose message is the one shown."""
    from policygate.engine.catalogue import parse_modules

    _library()
    broken = tmp_path / "broken.rego"
    broken.write_text("package policygate\n\nallow if {\n")
    files = sorted(ROOT.joinpath("rego").rglob("*.rego"))
    by_binary, binary_errors = parse_modules(opa_binary(), [*files, broken])
    in_process, errors = parse_modules(opa_binary(), [*files, broken], inprocess=True)
    assert len(in_process) == len(files) and in_process == by_binary
    assert errors == binary_errors and len(errors) == 1 and "rego_parse_error" in errors[0]


def test_auto_decides_in_process_where_the_library_is(tmp_path: Path) -> None:
    """The default (``auto``) with the library built: a CLI decision is made and recorded in process."""

    _library()
    env = {k: v for k, v in os.environ.items() if k != "POLICYGATE_OPA_LIBRARY"}
    env["POLICYGATE_ENGINE"] = "auto"
    assert _evaluate_engine(env, f"sqlite:///{tmp_path}/decisions.db", ROOT) == "inprocess"


def _evaluate_engine(env: dict[str, str], db: str, cwd: Path) -> str:
    """`policygate evaluate compliant.json` in a fresh process: the engine its record says decided."""
    import subprocess
    import sys

    policygate = str(Path(sys.executable).with_name("policygate"))
    proc = subprocess.run(
        [policygate, "evaluate", str(EXAMPLES / "compliant.json"), "--db", db],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )
    assert proc.returncode == 0, proc.stderr
    log = DecisionLog(db)
    try:
        records = log.query(kind="decision", limit=5)
        assert len(records) == 1
        return str(records[0]["opa"]["engine"])
    finally:
        log.close()


def test_an_in_process_evaluate_imports_no_http_client_and_no_orm(tmp_path: Path) -> None:
    """A CI check on the in-process engine loads only what it uses: no OPA HTTP client (requests,
    opa_client, aiohttp), no service (fastapi), no ORM (the log is SQLAlchemy Core) and no YAML
    parser for a policy without YAML data (rego/)."""
    import subprocess
    import sys

    _library()
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom policygate.cli import app\n"
        "r = CliRunner().invoke(app, ['evaluate', sys.argv[1], '--db', sys.argv[2]])\n"
        "print(r.exit_code, sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'requests', 'opa_client', 'aiohttp', 'fastapi', 'uvicorn', 'yaml'} "
        "or m.startswith('sqlalchemy.orm')))\n"
    )
    env = {**os.environ, "POLICYGATE_ENGINE": "inprocess"}
    args = [str(EXAMPLES / "compliant.json"), f"sqlite:///{tmp_path}/decisions.db"]
    out = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "0 []", out.stdout[-2000:]
