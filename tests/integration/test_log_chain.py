"""The hash chain on SQLite and PostgreSQL: appends link, and any edit, deletion or reordering is named."""

from __future__ import annotations

import json
import threading

from sqlalchemy import text

from policygate.decisions.log import DecisionLog


def _append(log: DecisionLog, i: int) -> int:
    decision = {"decision_id": f"d{i}", "outcome": "allow", "subject": {"ref": f"mlflow:models:/m/{i}"}}
    return log.append(
        "decision",
        f"d{i}",
        {"decision": decision, "evidence": {"i": i}},
        model_ref=f"mlflow:models:/m/{i}",
        outcome="allow",
    )


def test_appends_form_a_verifiable_chain(any_log: DecisionLog) -> None:
    assert [_append(any_log, i) for i in range(1, 6)] == [1, 2, 3, 4, 5]
    result = any_log.verify()
    assert result.ok and result.records == 5
    assert any_log.get("d3")["decision"]["decision_id"] == "d3"


def test_edited_body_is_named(any_log: DecisionLog) -> None:
    for i in range(1, 6):
        _append(any_log, i)
    with any_log.engine.begin() as conn:
        body = json.loads(conn.execute(text("SELECT body FROM decision_log WHERE seq=3")).scalar_one())
        body["decision"]["outcome"] = "deny"
        conn.execute(text("UPDATE decision_log SET body=:b WHERE seq=3"), {"b": json.dumps(body)})
    result = any_log.verify()
    assert not result.ok and result.seq == 3 and "changed" in (result.problem or "")


def test_edited_indexed_column_is_named(any_log: DecisionLog) -> None:
    for i in range(1, 4):
        _append(any_log, i)
    with any_log.engine.begin() as conn:
        conn.execute(text("UPDATE decision_log SET outcome='deny' WHERE seq=2"))
    result = any_log.verify()
    assert not result.ok and result.seq == 2


def test_deleted_record_is_named(any_log: DecisionLog) -> None:
    for i in range(1, 6):
        _append(any_log, i)
    with any_log.engine.begin() as conn:
        conn.execute(text("DELETE FROM decision_log WHERE seq=2"))
    result = any_log.verify()
    assert not result.ok and "record 2 is missing" in (result.problem or "")


def test_reordered_records_are_named(any_log: DecisionLog) -> None:
    for i in range(1, 5):
        _append(any_log, i)
    with any_log.engine.begin() as conn:
        rows = conn.execute(
            text("SELECT seq, body, record_hash, prev_hash FROM decision_log ORDER BY seq")
        ).all()
        a, b = rows[1], rows[2]
        for target, src in ((a, b), (b, a)):
            conn.execute(
                text("UPDATE decision_log SET body=:body, record_hash=:h, prev_hash=:p WHERE seq=:s"),
                {"body": src.body, "h": src.record_hash, "p": src.prev_hash, "s": target.seq},
            )
    result = any_log.verify()
    assert not result.ok and result.seq == 2


def test_concurrent_writers_build_one_chain(log_url: str) -> None:
    logs = [DecisionLog(log_url) for _ in range(3)]  # separate engines, like separate processes
    errors: list[BaseException] = []

    def writer(log: DecisionLog, base: int) -> None:
        try:
            for i in range(40):
                _append(log, base + i)
        except BaseException as exc:  # noqa: BLE001  # pragma: no cover - a thread's failure, reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(logs[n % 3], n * 1000)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    result = logs[0].verify()
    assert result.ok and result.records == 240
    for log in logs:
        log.close()
