"""The console's pages without a browser (the browser tests are test_console.py): the chain check on
a decision's page against an edited record, what-ifs never shown as a model's latest decision, the
models list's paging and filters, and hostile text kept inert."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import text

from policygate.api.console.model_list import Filters, model_page
from policygate.decisions.log import DecisionLog
from tests.support.checkout import REGO, load_example, opa_binary, policy_copy, without_shipped_tests


def what_if(client: Any, evidence: dict[str, Any], name: str, stage: str = "production") -> dict[str, Any]:
    doc = copy.deepcopy(evidence)
    doc["subject"].update(name=name, ref=f"mlflow:models:/{name}/1", version="1")
    doc["request"]["target"]["stage"] = stage
    answer = client.post("/v1/evaluate", json={"evidence": doc})
    assert answer.status_code == 200, answer.text
    decision: dict[str, Any] = answer.json()
    return decision


def test_the_chain_check_names_an_edited_record(
    client: Any, compliant: dict[str, Any], sqlite_url: str
) -> None:
    ids = [what_if(client, compliant, f"chain-{i}")["decision_id"] for i in range(3)]
    page = client.get(f"/ui/decisions/{ids[2]}?verify=1").text
    assert "hash and link verify" in page and re.search(r"verifies</span> from record 1 to \d+", page)

    log = DecisionLog(sqlite_url)
    with log.engine.begin() as conn:  # someone with database access edits the second decision
        conn.execute(
            text("UPDATE decision_log SET body = replace(body, :was, :now) WHERE decision_id = :i"),
            {"was": '"allow":true', "now": '"allow":false', "i": ids[1]},
        )
    log.close()
    client.app.state.console_chain.at = 0.0  # as if the last walk were older than five minutes
    edited = client.get(f"/ui/decisions/{ids[1]}").text
    assert "hash does not match its body" in edited
    later = client.get(f"/ui/decisions/{ids[2]}?verify=1").text
    assert "does not verify" in later and "was changed (hash mismatch)" in later


def test_a_what_if_is_never_a_models_latest_decision(
    client: Any, compliant: dict[str, Any], sqlite_url: str
) -> None:
    what_if(client, compliant, "whatif-only")
    log = DecisionLog(sqlite_url)
    try:
        listing = model_page(log, Filters())
    finally:
        log.close()
    assert listing.rows == []  # supplied evidence decides nothing about the model
    model = client.get("/ui/models/" + quote("mlflow:models:/whatif-only/1", safe="")).text
    assert "what-if" in model and "No collected evidence recorded" in model


def test_paging_and_filters_walk_the_model_index(any_log: DecisionLog) -> None:
    """On SQLite and PostgreSQL alike (the search is a loose index scan written in SQL)."""
    decision_log = any_log
    for i in range(7):
        ref = f"mlflow:models:/m{i}/1"
        for stage, outcome in (("staging", "allow"), ("production", "deny" if i % 2 else "allow")):
            body = {
                "decision": {
                    "decision_id": f"d-{i}-{stage}",
                    "outcome": outcome,
                    "subject": {"ref": ref},
                    "policy_revision": "sha256:" + "0" * 64,
                },
                "evidence": {"ownership": {"owner": "carol@corp" if i < 3 else "dan@corp"}},
            }
            decision_log.append(
                "decision", f"d-{i}-{stage}", body, model_ref=ref, target_stage=stage, outcome=outcome
            )
    decision_log.append(
        "approval",
        "approval:x",
        {"approval": {"model": "mlflow:models:/a0/1"}},
        model_ref="mlflow:models:/a0/1",
    )
    first = model_page(decision_log, Filters(), size=3)
    assert [r.ref for r in first.rows] == [f"mlflow:models:/m{i}/1" for i in range(3)]
    assert first.rows[0].latest["production"].outcome == "allow" and first.rows[0].owner == "carol@corp"
    rest = model_page(decision_log, Filters(), after=first.after, size=10)
    assert [r.ref for r in rest.rows] == [
        f"mlflow:models:/m{i}/1" for i in range(3, 7)
    ] and rest.after is None
    denied = model_page(decision_log, Filters(target="production", outcome="deny"))
    assert [r.ref for r in denied.rows] == [
        "mlflow:models:/m1/1",
        "mlflow:models:/m3/1",
        "mlflow:models:/m5/1",
    ]
    assert [r.ref for r in model_page(decision_log, Filters(owner="CAROL")).rows] == [
        f"mlflow:models:/m{i}/1" for i in range(3)
    ]
    assert [r.ref for r in model_page(decision_log, Filters(search="M4/")).rows] == ["mlflow:models:/m4/1"]
    assert model_page(decision_log, Filters(platform="azureml")).rows == []
    assert model_page(decision_log, Filters(search="%")).rows == []  # a LIKE wildcard is a character
    assert model_page(decision_log, Filters(search="_")).rows == []
    assert [r.ref for r in model_page(decision_log, Filters(search="m5", platform="mlflow")).rows] == [
        "mlflow:models:/m5/1"
    ]
    searched = model_page(decision_log, Filters(search="/1"), size=4)
    assert len(searched.rows) == 4 and searched.after == "mlflow:models:/m3/1"
    assert [r.ref for r in model_page(decision_log, Filters(search="/1"), after=searched.after).rows] == [
        "mlflow:models:/m4/1", "mlflow:models:/m5/1", "mlflow:models:/m6/1",
    ]  # fmt: skip
    # a filtered page stops after its budget, saying so
    stopped = model_page(decision_log, Filters(owner="nobody"), size=3, budget=2)
    assert stopped.rows == [] and stopped.stopped_early and stopped.after is not None


def test_hostile_text_stays_text(client: Any, compliant: dict[str, Any]) -> None:
    doc = copy.deepcopy(compliant)
    doc["ownership"]["owner"] = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    doc["lineage"]["datasets"][0]["source"] = 'https://x.example/" onmouseover="alert(3)'
    decision = what_if(client, doc, "hostile")
    page = client.get(f"/ui/decisions/{decision['decision_id']}").text
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "onerror=alert(2)>" not in page


def test_a_candidate_policy_is_replayed_on_the_policy_page(
    sqlite_url: str, compliant: dict[str, Any], tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from policygate.api.app import create_app
    from policygate.config import Settings

    stricter = without_shipped_tests(policy_copy(tmp_path), keep_helpers=False)  # they assume 1
    data = json.loads((stricter / "data.json").read_text())
    data["policygate_params"]["required_approvals"]["production"]["medium"] = 3  # the example has two
    (stricter / "data.json").write_text(json.dumps(data))
    settings = Settings(db_url=sqlite_url, policy_dir=REGO, opa_bin=opa_binary())
    with TestClient(create_app(settings)) as plain:
        assert "candidate" not in plain.get("/ui/policy").text.lower()
        assert plain.get("/ui/policy/replay").status_code == 404
    settings.console_candidate_policy = stricter
    with TestClient(create_app(settings)) as api:
        decided = what_if(api, compliant, "replayed")
        assert decided["outcome"] == "allow"
        assert "replay it over the last 7 days" in api.get("/ui/policy").text
        page = api.get("/ui/policy/replay?since=7d")
        assert page.status_code == 200, page.text
        assert "1 replayed, 1 would change" in " ".join(page.text.split())
        assert decided["decision_id"][:8] in page.text and "APR-001" in page.text
        assert api.get("/ui/policy/replay?since=soon").status_code == 422
        assert (
            DecisionLog(sqlite_url).query(kind="decision", limit=10)[0]["decision"]["decision_id"]
            == decided["decision_id"]
        )  # nothing recorded by the replay


def test_conflicting_platforms_are_named_on_the_model_page(decision_log: DecisionLog, client: Any) -> None:
    evidence = load_example("compliant")
    evidence["collection"]["conflicts"] = [
        {"field": "ownership.owner", "values": {"mlflow": "alice@corp", "azureml": "bob@corp"}}
    ]
    ref = evidence["subject"]["ref"]
    body = {
        "decision": {
            "decision_id": "d-conflict",
            "outcome": "allow",
            "subject": {"ref": ref},
            "target": {"stage": "staging"},
        },
        "evidence": evidence,
    }
    decision_log.append(
        "decision", "d-conflict", body, model_ref=ref, target_stage="staging", outcome="allow"
    )
    page = " ".join(client.get("/ui/models/" + quote(ref, safe="")).text.split())
    assert "The platforms disagree on" in page
    assert "<code>ownership.owner</code>: azureml says <code>&#34;bob@corp&#34;</code>; mlflow says" in page
