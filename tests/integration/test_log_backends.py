"""The decision log on SQLite and PostgreSQL: migrations, several writer processes, queries, export.

Every test here runs on both backends (the ``log_url`` fixture); PostgreSQL is the real
server scripts/ensure-postgres.sh keeps, each test in a schema of its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from policygate.decisions.database import HEAD_REVISION, head_revision
from policygate.decisions.export import opa_event
from policygate.decisions.log import DecisionLog, LogError
from policygate.decisions.record import governed_record
from policygate.decisions.schema import metadata

ROOT = Path(__file__).resolve().parents[2]


def decide(log: DecisionLog, i: int, *, model: str = "mlflow:models:/m/1", **over: Any) -> int:
    """Append a decision shaped like the service's (decision + evidence), as the service does."""
    target = over.get("target", "production")
    outcome = over.get("outcome", "allow")
    decision = {
        "decision_id": f"d{i}",
        "outcome": outcome,
        "allow": outcome == "allow",
        "reasons": [] if outcome == "allow" else [{"id": "APR-001", "message": "needs approval"}],
        "warnings": [],
        "policy_revision": over.get("revision", "sha256:rev1"),
        "subject": {"ref": model},
        "target": {"stage": target},
        "requested_by": "ci@corp",
        "evaluated_at": "2026-11-20T12:00:00Z",
    }
    evidence = {
        "schema": "policygate.evidence/v1",
        "subject": {"ref": model},
        "ownership": {"owner": over.get("owner", "alice@corp"), "risk_tier": "high"},
        "lineage": {"run": {"id": f"run{i}"}, "code": {"commit": "abc"}, "datasets": []},
        "approvals": over.get("approvals", []),
    }
    return log.append(
        "decision",
        f"d{i}",
        {"decision": decision, "evidence": evidence},
        model_ref=model,
        target_stage=target,
        outcome=outcome,
        policy_revision=decision["policy_revision"],
    )


def _only_decision_log(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Other modules' migrations add their own tables; this comparison is about the log's."""
    return type_ != "table" or name == "decision_log"


def test_a_new_log_is_migrated_to_head(any_log: DecisionLog) -> None:
    with any_log.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head_revision()
        indexes = {ix["name"] for ix in inspect(conn).get_indexes("decision_log")}
        # the migrated schema is the one the code maps: no drift between the ORM and the migrations
        context = MigrationContext.configure(conn, opts={"include_object": _only_decision_log})
        diff = compare_metadata(context, metadata)
    assert {"ix_decision_log_model_seq", "ix_decision_log_model_target_seq"} <= indexes
    assert diff == []


def test_reopening_is_idempotent_and_keeps_records(log_url: str) -> None:
    log = DecisionLog(log_url)
    decide(log, 1)
    log.close()
    again = DecisionLog(log_url)
    assert again.verify().records == 1
    again.close()


def test_a_log_made_before_migrations_is_adopted(log_url: str) -> None:
    """A log created by the first release (create_all, no alembic_version) is stamped, then upgraded."""
    log = DecisionLog(log_url)
    decide(log, 1)
    with log.engine.begin() as conn:  # back to what the first release left: decision_log alone
        for table in inspect(conn).get_table_names():
            if table != "decision_log":
                conn.execute(text(f"DROP TABLE {table}"))
        for later in (
            "ix_decision_log_model_target_seq",
            "ix_decision_log_kind_seq",
            "ix_decision_log_release",
        ):
            conn.execute(text(f"DROP INDEX {later}"))  # 0002, 0004, 0005
        conn.execute(text("ALTER TABLE decision_log DROP COLUMN evidence_origin"))  # 0005
    log.close()
    adopted = DecisionLog(log_url)
    with adopted.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head_revision()
        assert {"ix_decision_log_model_target_seq", "ix_decision_log_kind_seq"} <= {
            ix["name"] for ix in inspect(conn).get_indexes("decision_log")
        }
    assert adopted.verify().ok and adopted.get("d1") is not None
    adopted.close()


def test_a_log_before_0005_gets_its_evidence_origin_column_from_the_bodies(log_url: str) -> None:
    """Migration 0005 fills the new column from each decision's hashed body: the latest collected
    decision is found by the index, what-ifs are not, and the chain still verifies."""
    from alembic import command

    from policygate.decisions.database import _alembic_config

    log = DecisionLog(log_url)
    for i in range(1, 4):
        decide(log, i)  # before policygate kept an origin: release decisions
    what_if(log, 4, origin="collected")
    what_if(log, 5, origin="supplied")
    log.close()
    log = DecisionLog(log_url)
    with log.engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0004")
    log.close()
    log = DecisionLog(log_url)
    try:
        with log.engine.connect() as conn:
            assert "evidence_origin" in {c["name"] for c in inspect(conn).get_columns("decision_log")}
        assert log.verify().ok
        assert (
            log.latest_release(model=["mlflow:models:/m/1"], target="production")["decision"]["decision_id"]
            == "w4"
        )
    finally:
        log.close()


def test_what_ifs_never_hide_the_latest_release_decision(any_log: DecisionLog) -> None:
    """latest_release: the newest collected decision, however many what-ifs came after it; a row whose
    evidence origin column was changed is named by log verify."""
    model = "mlflow:models:/m/1"
    seq = what_if(any_log, 1, origin="collected")
    for i in range(2, 80):
        what_if(any_log, i, origin="supplied")
    found = any_log.latest_release(model=[model], target="production", outcome="allow")
    assert found is not None and found["seq"] == seq
    assert any_log.latest_release(model=[model], target="staging") is None
    assert len(any_log.query(model=model, outcome="allow", release=True)) == 1
    with any_log.engine.begin() as conn:
        conn.execute(text(f"UPDATE decision_log SET evidence_origin = 'supplied' WHERE seq = {seq}"))
    result = any_log.verify()
    assert not result.ok and result.seq == seq and "evidence origin" in str(result.problem)


def what_if(log: DecisionLog, i: int, *, origin: str) -> int:
    model = "mlflow:models:/m/1"
    decision = {"decision_id": f"w{i}", "outcome": "allow", "allow": True, "subject": {"ref": model},
                "target": {"stage": "production"}, "evidence_origin": origin,
                "policy_revision": "r"}  # fmt: skip
    return log.append("decision", f"w{i}", {"decision": decision, "evidence": {}}, model_ref=model,
                      target_stage="production", outcome="allow", policy_revision="r")  # fmt: skip


def test_readers_never_create_a_log(tmp_path: Path) -> None:
    with pytest.raises(LogError, match="no decision log"):
        DecisionLog(f"sqlite:///{tmp_path}/absent.db", create=False)
    assert not (tmp_path / "absent.db").exists()


def test_reader_refuses_a_database_without_the_log(pg_url: str) -> None:
    with pytest.raises(LogError, match="table decision_log is missing"):
        DecisionLog(pg_url, create=False)


WRITER = textwrap.dedent(
    """
    import sys
    from policygate.decisions.log import DecisionLog
    url, base, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    log = DecisionLog(url)  # every process migrates the same fresh log at the same moment
    for i in range(base, base + n):
        log.append("decision", f"p{i}", {"decision": {"outcome": "allow", "subject": {"ref": "m"}}},
                   model_ref="m", outcome="allow")
    log.close()
    """
)


def test_several_processes_build_one_unbroken_chain(log_url: str) -> None:
    """Like several `policygate serve` replicas on one database: one chain, nothing lost."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, log_url, str(p * 1000), "40"],
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for p in range(4)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    log = DecisionLog(log_url, create=False)
    result = log.verify()
    assert result.ok and result.records == 160, result
    assert all(log.get(f"p{p * 1000 + i}") for p in range(4) for i in range(40))
    log.close()


def test_recorded_at_follows_the_chain(any_log: DecisionLog) -> None:
    for i in range(1, 6):
        decide(any_log, i)
    times = [r.body["recorded_at"] for r in any_log.records()]
    assert times == sorted(times)


def test_query_filters_and_keyset_pages(any_log: DecisionLog) -> None:
    for i in range(1, 31):
        decide(
            any_log,
            i,
            model=f"mlflow:models:/m/{i % 3}",
            outcome="deny" if i % 2 else "allow",
            target="staging" if i % 5 == 0 else "production",
        )
    rows = any_log.query(model="mlflow:models:/m/1", limit=100)
    assert [r["seq"] for r in rows] == [i for i in range(30, 0, -1) if i % 3 == 1]
    denied = any_log.query(model="mlflow:models:/m/1", outcome="deny", limit=100)
    assert all(r["decision"]["outcome"] == "deny" for r in denied) and len(denied) == 5
    staging = any_log.query(target="staging", limit=100)
    assert [r["seq"] for r in staging] == [30, 25, 20, 15, 10, 5]
    pages, before = [], None
    while True:
        page = any_log.query(limit=7, before_seq=before)
        pages.append([r["seq"] for r in page])
        if len(page) < 7:
            break
        before = page[-1]["seq"]
    assert sum(pages, []) == list(range(30, 0, -1))


def test_since_and_until_compare_instants_in_any_offset(any_log: DecisionLog) -> None:
    decide(any_log, 1)
    at = datetime.fromisoformat(any_log.get("d1")["recorded_at"])  # type: ignore[index]
    plus2 = at.astimezone(timezone_plus_2())
    assert [r["seq"] for r in any_log.query(since=plus2)] == [1]
    assert any_log.query(since=plus2 + timedelta(microseconds=1)) == []
    assert [r["seq"] for r in any_log.query(until=plus2 + timedelta(microseconds=1))] == [1]
    naive_utc = at.astimezone(UTC).replace(tzinfo=None)
    assert [r["seq"] for r in any_log.query(since=naive_utc)] == [1]


def timezone_plus_2() -> Any:
    from datetime import timezone

    return timezone(timedelta(hours=2))


def test_records_stream_in_batches_with_filters(any_log: DecisionLog) -> None:
    for i in range(1, 26):
        decide(any_log, i)
    any_log.append("waiver", "w1", {"action": "add"})
    assert [r.seq for r in any_log.records(batch_size=4)] == list(range(1, 27))
    assert [r.seq for r in any_log.records(kind="decision", batch_size=4)] == list(range(1, 26))
    tenth = datetime.fromisoformat(any_log.get("d10")["recorded_at"])  # type: ignore[index]
    assert [r.seq for r in any_log.records(since=tenth, kind="decision", batch_size=3)] == list(range(10, 26))
    assert [r.seq for r in any_log.records(until=tenth)] == list(range(1, 10))


def test_opa_event_has_the_decision_log_fields(any_log: DecisionLog) -> None:
    decide(any_log, 1, outcome="deny")
    event = opa_event(next(any_log.records()))
    assert event["decision_id"] == "d1" and event["path"] == "policygate/decision"
    assert event["input"]["schema"] == "policygate.evidence/v1"
    assert event["result"]["allow"] is False and event["result"]["deny"][0]["id"] == "APR-001"
    assert event["timestamp"].endswith("Z") and event["revision"] == "sha256:rev1"
    assert event["bundles"] == {"policygate": {"revision": "sha256:rev1"}}
    assert event["policygate"]["seq"] == 1 and len(event["policygate"]["record_hash"]) == 64
    json.dumps(event)  # serialisable as one JSONL line


def test_governed_record_answers_the_four_questions(any_log: DecisionLog) -> None:
    approval = {"by": "bob@corp", "decision": "approved", "stage": "production", "at": "2026-11-10T00:00:00Z"}
    decide(any_log, 1, target="staging", revision="sha256:old", owner="carol@corp")
    decide(any_log, 2, outcome="deny", approvals=[approval])
    decide(any_log, 3, approvals=[approval], revision="sha256:new")
    decide(any_log, 4, model="mlflow:models:/other/1")
    record = governed_record(any_log, "mlflow:models:/m/01")  # a non-canonical spelling finds it too
    assert record is not None
    assert record["owner"] == "alice@corp" and record["risk_tier"] == "high"  # who owns it (now)
    assert record["policy_revision"] == "sha256:new"  # which policy decided
    latest = record["latest_decisions"]
    assert latest["production"]["outcome"] == "allow" and latest["production"]["decision_id"] == "d3"
    assert latest["staging"]["outcome"] == "allow" and latest["staging"]["policy_revision"] == "sha256:old"
    assert latest["production"]["lineage"]["run"]["id"] == "run3"  # on which lineage
    assert record["lineage"]["run"]["id"] == "run3"
    assert [h["decision_id"] for h in record["history"]] == ["d3", "d2", "d1"]
    assert record["decisions"] == {"total": 3, "allow": 2, "deny": 1, "error": 0}
    assert len(record["approvals"]) == 1 and record["approvals"][0]["seen_in_decisions"] == 2
    assert record["approvals"][0]["first_seen_in"] == "d2"
    assert governed_record(any_log, "mlflow:models:/absent/1") is None


def test_the_migrations_and_the_one_metadata_agree(log_url: str) -> None:
    """Both tables are on one MetaData: Alembic autogenerate finds nothing to add or drop."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    log = DecisionLog(log_url)
    try:
        with log.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        log.close()
    assert diff == [], diff


def test_the_head_revision_constant_is_the_newest_migration() -> None:
    """Opening a current log skips Alembic by comparing with HEAD_REVISION: a new migration must
    move it, or logs would never be migrated to it."""
    assert head_revision() == HEAD_REVISION
