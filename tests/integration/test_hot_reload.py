"""Hot reload (`policygate serve --watch`) on the real OPA: a good change shows in decisions with its
new revision, a bad one is refused (the last good policy keeps deciding, /readyz says why), a fix
recovers, and the waivers survive the swap to the reloaded OPA. Every wait is bounded."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from fastapi.testclient import TestClient

from policygate.api.app import create_app
from policygate.config import Settings
from policygate.engine.opa import OpaEngine
from policygate.policy.files import json_errors, snapshot
from policygate.policy.load import load_policy
from tests.support.checkout import REGO, load_example, opa_binary, policy_copy, without_shipped_tests
from tests.support.served import Served

MODEL = "mlflow:models:/fraud-detector/7"
RELOAD_S = 15.0  # bound for a change to show (measured: well under 1 s)
T = TypeVar("T")


class WatchedServe(Served):
    """`policygate serve --watch` on a copy of rego/ (``output_so_far()`` while it runs)."""

    def __init__(self, tmp: Path) -> None:
        self.rego = without_shipped_tests(policy_copy(tmp), keep_helpers=False)  # approvals change
        env = {"POLICYGATE_POLICY_DIR": str(self.rego), "POLICYGATE_DB_URL": f"sqlite:///{tmp}/decisions.db"}
        super().__init__(env, args=["--watch"])

    def ready(self) -> requests.Response:
        return requests.get(f"{self.base}/readyz", timeout=5)

    def evaluate(self, evidence: dict[str, Any]) -> dict[str, Any]:
        resp = requests.post(f"{self.base}/v1/evaluate", json={"evidence": evidence}, timeout=10)
        assert resp.status_code == 200, resp.text
        decision: dict[str, Any] = resp.json()
        return decision


def until(check: Callable[[], T], timeout_s: float, what: str) -> T:
    """Poll ``check`` until it returns something truthy (returned), failing after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            result = check()
            if result:
                return result
        except requests.RequestException:
            pass  # the server is starting or restarting
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} (waited {timeout_s:.0f} s)")
        time.sleep(0.05)


def ids(decision: dict[str, Any]) -> list[str]:
    return [r["id"] for r in decision["reasons"]]


def set_required_approvals(rego: Path, medium: int) -> None:
    """Edit data.json in place, as an editor that rewrites the file does."""
    data = json.loads((rego / "data.json").read_text())
    data["policygate_params"]["required_approvals"]["production"]["medium"] = medium
    (rego / "data.json").write_text(json.dumps(data, indent=2))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[WatchedServe]:
    with WatchedServe(tmp_path) as s:
        yield s


def test_watch_reloads_refuses_a_broken_policy_and_recovers(served: WatchedServe) -> None:
    compliant = load_example("compliant")
    first = served.evaluate(compliant)
    assert first["outcome"] == "allow"
    r1 = first["policy_revision"]
    ready = served.ready().json()
    assert ready["checks"]["policy"] is True and ready["policy"]["revision"] == r1

    # A good change: compliant (two approvals) now needs three, so APR-001 denies.
    changed_at = time.monotonic()
    set_required_approvals(served.rego, 3)
    second = until(
        lambda: (d := served.evaluate(compliant))["policy_revision"] != r1 and d,
        RELOAD_S,
        "decisions never showed a new revision after data.json changed",
    )
    shown_after_s = time.monotonic() - changed_at
    r2 = second["policy_revision"]
    assert second["outcome"] == "deny" and "APR-001" in ids(second), second
    assert shown_after_s < RELOAD_S
    assert requests.get(f"{served.base}/v1/policy", timeout=5).json()["policy_revision"] == r2

    # A change that does not compile: refused; the last good policy keeps deciding, with its revision.
    main = served.rego / "policygate" / "main.rego"
    good = main.read_text()
    main.write_text(good + "\nthis is not rego {\n")
    refused = until(
        lambda: (r := served.ready()).status_code == 503 and r.json(),
        RELOAD_S,
        "/readyz never reported the broken policy",
    )
    own = {k: v for k, v in refused["checks"].items() if not k.startswith("source:")}
    assert refused["ready"] is False and own == {"opa": True, "decision_log": True, "policy": False}
    error = refused["policy"]["errors"][0]
    assert error["file"].endswith("policygate/main.rego") and error["row"] > good.count("\n"), error
    assert "main.rego:" in refused["policy"]["error"] and "rego_parse_error" in refused["policy"]["error"]
    assert refused["policy"]["revision"] == r2
    for _ in range(5):
        still = served.evaluate(compliant)
        assert still["outcome"] == "deny" and "APR-001" in ids(still) and still["policy_revision"] == r2
    until(
        lambda: "ERROR policygate.policy.watch: policy change refused" in served.output_so_far(),
        RELOAD_S,
        "the refusal was not logged at ERROR",
    )
    assert "main.rego:" in served.output_so_far()

    # The fix (the good text and a comment, so a new revision): ready again, decisions show it.
    main.write_text(good + "\n# fixed\n")
    until(lambda: served.ready().status_code == 200, RELOAD_S, "/readyz never recovered after the fix")
    third = served.evaluate(compliant)
    r3 = third["policy_revision"]
    assert r3 not in (r1, r2) and third["outcome"] == "deny"
    state = served.ready().json()["policy"]
    assert state["revision"] == r3 and state["error"] is None and state["errors"] == []

    # Broken JSON data, then a broken test module: both refused (OPA loads tests too), both named.
    data = served.rego / "data.json"
    good_data = data.read_text()
    data.write_text(good_data.replace('"max_approval_age_days": 90,', '"max_approval_age_days": 90'))
    refused = until(
        lambda: (r := served.ready()).status_code == 503 and r.json(),
        RELOAD_S,
        "broken data.json not refused",
    )
    error = refused["policy"]["errors"][0]
    assert error["file"].endswith("data.json") and error["row"] > 1 and error["code"] == "data_parse_error"
    assert served.evaluate(compliant)["policy_revision"] == r3
    data.write_text(good_data)
    until(lambda: served.ready().status_code == 200, RELOAD_S, "/readyz never recovered after data.json")

    test_module = served.rego / "policygate" / "main_test.rego"
    test_module.write_text("package policygate_test\n\ntest_broken if { no_such_function(1) }\n")
    refused = until(
        lambda: (r := served.ready()).status_code == 503 and r.json(), RELOAD_S, "broken test not refused"
    )
    assert refused["policy"]["errors"][0]["file"].endswith("main_test.rego"), refused
    assert "no_such_function" in refused["policy"]["error"]
    assert served.evaluate(compliant)["policy_revision"] == r3


def test_waivers_survive_reloads(served: WatchedServe) -> None:
    """A reload is a new OPA; the watcher gives it the waivers before it serves."""
    compliant = load_example("compliant")
    r1 = served.evaluate(compliant)["policy_revision"]
    granted = requests.post(
        f"{served.base}/v1/waivers",
        json={
            "rule": "APR-001",
            "model": MODEL,
            "targets": ["production"],
            "reason": "CAB-91: second approver on leave",
            "approved_by": "ciso@example.com",
            "expires": "7d",
        },
        timeout=10,
    )
    assert granted.status_code == 201, granted.text
    waiver_id = granted.json()["id"]

    set_required_approvals(served.rego, 3)  # APR-001 would deny; the waiver turns it into a warning
    until(
        lambda: served.evaluate(compliant)["policy_revision"] != r1,
        RELOAD_S,
        "decisions never showed the new revision",
    )

    def waived() -> dict[str, Any] | None:
        d = served.evaluate(compliant)
        ok = d["outcome"] == "allow" and any(w.get("waiver") == waiver_id for w in d["warnings"])
        return d if ok else None

    assert waived(), "the waiver did not apply at once after the reload"
    time.sleep(1.0)
    for _ in range(5):
        assert waived(), "the waiver stopped applying after a later reload"


def test_watch_applies_only_to_the_managed_opa(
    opa: OpaEngine, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With POLICYGATE_OPA_URL the OPA loads its own policies: --watch says so and changes nothing."""
    settings = Settings(db_url=sqlite_url, opa_url=opa.url, opa_token=opa.token, watch=True)
    with caplog.at_level("WARNING", logger="policygate.runtime"), TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 200 and "policy" not in ready.json()["checks"]
    assert "--watch applies only to the managed OPA" in caplog.text


def test_the_loaded_revision_is_the_one_opa_reports(opa: OpaEngine) -> None:
    """The revision computed from the files is the one OPA's own modules and data give."""
    report, engine = load_policy(opa_binary(), REGO)
    assert engine is not None, report.render()
    with engine:
        assert report.revision == engine.refresh_revision() == opa.refresh_revision()


def test_load_catches_what_opa_check_does_not(tmp_path: Path) -> None:
    """`opa check` reads no data files; loading as `opa run` does refuses a data/rule conflict too."""
    rego = policy_copy(tmp_path)
    report, engine = load_policy(opa_binary(), rego)
    assert report.ok and engine is not None
    engine.close()

    (rego / "policygate" / "data.json").write_text('{"decision": 1}')
    report, engine = load_policy(opa_binary(), rego)
    assert engine is None and "conflicting rule" in report.errors[0].message, report.render()

    (rego / "policygate" / "data.json").write_text('{"decision": ')
    broken = json_errors(snapshot(rego))
    assert [(Path(e.file).name, e.row, e.code) for e in broken] == [("data.json", 1, "data_parse_error")]


def test_decisions_around_a_reload_carry_the_revision_that_made_them(served: WatchedServe) -> None:
    """The managed OPA loads each checked copy as a bundle whose manifest holds its revision, so the
    revision a decision records comes from the provenance of its own query: under load, across the
    swap, every decision's revision and outcome belong together (no neighbouring revision)."""
    import threading

    compliant = load_example("compliant")
    answered: list[dict[str, Any]] = []
    stop = threading.Event()

    def hammer() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                resp = session.post(f"{served.base}/v1/evaluate", json={"evidence": compliant}, timeout=10)
                if resp.status_code == 200:
                    answered.append(resp.json())

    workers = [threading.Thread(target=hammer, daemon=True) for _ in range(4)]
    for w in workers:
        w.start()
    try:
        until(lambda: len(answered) > 20, RELOAD_S, "no decisions before the change")
        before = {d["policy_revision"] for d in answered}
        set_required_approvals(served.rego, 3)  # the example has two: deny from now on
        until(lambda: {d["policy_revision"] for d in answered[-4:]} - before, RELOAD_S, "no reload seen")
        mark = len(answered)
        until(lambda: len(answered) > mark + 20, RELOAD_S, "no decisions after the change")
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=15)
    by_revision: dict[str, set[str]] = {}
    for d in answered:
        by_revision.setdefault(d["policy_revision"], set()).add(d["outcome"])
    assert len(by_revision) == 2, by_revision
    (old,) = before
    assert by_revision[old] == {"allow"}
    assert [outcomes for rev, outcomes in by_revision.items() if rev != old] == [{"deny"}]


def test_the_managed_opa_names_its_revision_in_each_answer(opa: OpaEngine) -> None:
    decision, revision = opa.evaluate_revised(load_example("compliant"))
    assert decision["allow"] is True and revision == opa.policy_revision
